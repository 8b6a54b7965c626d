// Nothing half-written: files are staged in a hidden temporary folder (inside OUT_DIR when it exists,
// else beside it) and moved into OUT_DIR only when every stage succeeded. On failure (or destruction
// without commit) the staging folder is removed.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

namespace hf2onnx {

class OutputDir {
 public:
  explicit OutputDir(std::filesystem::path final_dir);
  ~OutputDir();
  OutputDir(const OutputDir&) = delete;
  OutputDir& operator=(const OutputDir&) = delete;

  // Path to write `name` to; every file written in the staging folder lands in OUT_DIR at commit.
  std::filesystem::path stage(const std::string& name);
  void copy_in(const std::filesystem::path& source, const std::string& name);
  // Moves every staged file into place; returns their final paths.
  std::vector<std::filesystem::path> commit();
  const std::filesystem::path& final_dir() const { return final_dir_; }

 private:
  std::filesystem::path final_dir_, staging_;
  bool committed_ = false;
};

}  // namespace hf2onnx
