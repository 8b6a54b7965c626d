#include "onnx/output_dir.h"

#include <unistd.h>

#include "hf2onnx/error.h"

namespace hf2onnx {
namespace fs = std::filesystem;

OutputDir::OutputDir(fs::path final_dir) {
  final_dir = final_dir.lexically_normal();
  if (!final_dir.has_filename()) final_dir = final_dir.parent_path();  // "out/" → "out"
  final_dir_ = final_dir;
  if (fs::exists(final_dir_) && !fs::is_directory(final_dir_))
    throw Error(final_dir_.string() + ": exists and is not a directory");
  // Stage inside OUT_DIR when it exists (always writable there), else beside it, where it will be created.
  std::error_code ec;
  const std::string hidden = ".hf2onnx-tmp." + std::to_string(getpid());
  if (fs::is_directory(final_dir_)) {
    staging_ = final_dir_ / hidden;
  } else {
    fs::path parent = fs::absolute(final_dir_).parent_path();
    fs::create_directories(parent, ec);
    if (ec) throw Error(parent.string() + ": cannot create: " + ec.message());
    staging_ = parent / ("." + final_dir_.filename().string() + hidden);
  }
  fs::remove_all(staging_, ec);
  fs::create_directory(staging_, ec);
  if (ec) throw Error(staging_.string() + ": cannot create: " + ec.message());
}

OutputDir::~OutputDir() {
  std::error_code ec;
  fs::remove_all(staging_, ec);
}

fs::path OutputDir::stage(const std::string& name) { return staging_ / name; }

void OutputDir::copy_in(const fs::path& source, const std::string& name) {
  std::error_code ec;
  fs::copy_file(source, stage(name), fs::copy_options::overwrite_existing, ec);
  if (ec) throw Error(source.string() + ": cannot copy: " + ec.message());
  fs::permissions(stage(name), fs::perms::owner_write, fs::perm_options::add, ec);  // sources may be read-only
}

std::vector<fs::path> OutputDir::commit() {
  std::error_code ec;
  fs::create_directories(final_dir_, ec);
  if (ec) throw Error(final_dir_.string() + ": cannot create: " + ec.message());
  std::vector<fs::path> out;
  std::vector<fs::path> staged;  // collected first: staging_ may lie inside final_dir_
  for (const auto& entry : fs::directory_iterator(staging_)) staged.push_back(entry.path());
  for (const auto& path : staged) {
    std::string name = path.filename().string();
    fs::rename(path, final_dir_ / name, ec);
    if (ec) throw Error((final_dir_ / name).string() + ": cannot move into place: " + ec.message());
    out.push_back(final_dir_ / name);
  }
  committed_ = true;
  return out;
}

}  // namespace hf2onnx
