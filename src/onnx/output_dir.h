// Nothing half-written, nothing stale. A run writes everything into a hidden staging folder and makes
// it visible only when every stage succeeded:
//  - ReplaceFolder (export): OUT_DIR is replaced as a whole. The staging folder is built beside OUT_DIR;
//    files of the old OUT_DIR that hf2onnx does not own (a user's README, .git) are carried into it, the
//    ones it owns (*.onnx, *.onnx_data, the companion files) are not, and the two folders are swapped in
//    one rename (renameat2 RENAME_EXCHANGE; two renames where the file system lacks it). Readers see the
//    old set or the new one, never a mix.
//  - AddFiles (quantize): the staged files are renamed into an existing folder, external data first, and
//    an old `<file>_data` this run did not write is removed.
// On failure, destruction without commit, SIGINT or SIGTERM, the staging folder, side files and any
// parent folders this run created are removed. Staging folders left by dead processes (SIGKILL, power
// loss) are swept when the next run starts in the same place.
#pragma once
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace hf2onnx {

class OutputDir {
 public:
  enum class Mode { ReplaceFolder, AddFiles };
  // `owned`: names of files in OUT_DIR that hf2onnx writes (ReplaceFolder drops them from the old folder);
  // *.onnx and *.onnx_data always are.
  explicit OutputDir(std::filesystem::path final_dir, Mode mode = Mode::ReplaceFolder,
                     std::function<bool(const std::string&)> owned = nullptr);
  ~OutputDir();
  OutputDir(const OutputDir&) = delete;
  OutputDir& operator=(const OutputDir&) = delete;

  // Path to write `name` to; every file written in the staging folder lands in OUT_DIR at commit.
  std::filesystem::path stage(const std::string& name);
  void copy_in(const std::filesystem::path& source, const std::string& name);
  // A file outside OUT_DIR (a --report) written now beside its final path under a temporary name, so that
  // an unwritable path fails before anything is committed, and renamed into place right after the commit.
  void add_side_file(const std::filesystem::path& path, const std::string& content);
  // The staged files with their final paths and sizes (for a report written before the commit).
  std::vector<std::pair<std::filesystem::path, uint64_t>> staged_files() const;
  // Makes the staged files visible; returns their final paths.
  std::vector<std::filesystem::path> commit();
  const std::filesystem::path& final_dir() const { return final_dir_; }

  // Names of staging folders: ".<OUT_DIR name>.hf2onnx-tmp.<pid>" beside OUT_DIR (ReplaceFolder) or
  // ".hf2onnx-tmp.<pid>" inside it (AddFiles). Removes those in `dir` whose process is gone.
  static void sweep_stale(const std::filesystem::path& dir);

 private:
  bool is_owned(const std::string& name) const;
  void commit_folder();
  void commit_files();
  void cleanup() noexcept;

  std::filesystem::path final_dir_, staging_;
  Mode mode_;
  std::function<bool(const std::string&)> owned_;
  std::vector<std::filesystem::path> created_parents_;  // innermost last
  std::vector<std::pair<std::filesystem::path, std::filesystem::path>> side_files_;  // temporary → final
  bool committed_ = false;
};

}  // namespace hf2onnx
