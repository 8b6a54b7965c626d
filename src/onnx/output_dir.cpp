#include "onnx/output_dir.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <set>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <regex>

#include "hf2onnx/error.h"

namespace hf2onnx {
namespace fs = std::filesystem;

namespace {

// --- Removal on SIGINT / SIGTERM --------------------------------------------------------------------
// Paths to remove when the process is interrupted. The handler only walks these fixed buffers (no
// allocation of ours), removes the trees, then re-raises the signal with its default action.
constexpr int kMaxCleanups = 16;
char g_cleanup[kMaxCleanups][4096];
std::atomic<bool> g_used[kMaxCleanups];
std::mutex g_cleanup_mutex;

void remove_tree_raw(const char* path) {
  struct stat st;
  if (lstat(path, &st) != 0) return;
  if (S_ISDIR(st.st_mode)) {
    if (DIR* d = opendir(path)) {
      while (dirent* e = readdir(d)) {
        if (!std::strcmp(e->d_name, ".") || !std::strcmp(e->d_name, "..")) continue;
        char child[4096];
        if (std::snprintf(child, sizeof child, "%s/%s", path, e->d_name) < static_cast<int>(sizeof child))
          remove_tree_raw(child);
      }
      closedir(d);
    }
    rmdir(path);
  } else {
    unlink(path);
  }
}

void on_signal(int sig) {
  for (int i = 0; i < kMaxCleanups; ++i)
    if (g_used[i].load()) remove_tree_raw(g_cleanup[i]);
  signal(sig, SIG_DFL);
  raise(sig);
}

void register_cleanup(const fs::path& p) {
  std::lock_guard<std::mutex> lock(g_cleanup_mutex);
  static bool installed = false;
  if (!installed) {
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
      struct sigaction sa {};
      sa.sa_handler = on_signal;
      sigemptyset(&sa.sa_mask);
      sigaction(sig, &sa, nullptr);
    }
    installed = true;
  }
  const std::string s = fs::absolute(p).string();
  if (s.size() >= sizeof g_cleanup[0]) return;
  for (int i = 0; i < kMaxCleanups; ++i)
    if (!g_used[i].load()) {
      std::memcpy(g_cleanup[i], s.c_str(), s.size() + 1);
      g_used[i].store(true);
      return;
    }
}

void unregister_cleanup(const fs::path& p) {
  std::lock_guard<std::mutex> lock(g_cleanup_mutex);
  const std::string s = fs::absolute(p).string();
  for (int i = 0; i < kMaxCleanups; ++i)
    if (g_used[i].load() && s == g_cleanup[i]) g_used[i].store(false);
}

bool process_alive(long pid) { return pid > 0 && (kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM); }

std::string pid_suffix() { return ".hf2onnx-tmp." + std::to_string(getpid()); }

// Staging folders, old folders set aside and temporary side files: ".<name>.hf2onnx-tmp.<pid>" and the like.
const std::regex& staging_name() {
  static const std::regex kStaging("^\\..*hf2onnx-(tmp|old)\\.([0-9]{1,9})$");
  return kStaging;
}

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

}  // namespace

void OutputDir::sweep_stale(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return;
  std::vector<fs::path> stale;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::smatch m;
    const std::string name = it->path().filename().string();
    if (std::regex_match(name, m, staging_name()) && !process_alive(std::stol(m[2].str()))) stale.push_back(it->path());
  }
  for (const auto& p : stale) fs::remove_all(p, ec);
}

OutputDir::OutputDir(fs::path final_dir, Mode mode, std::function<bool(const std::string&)> owned)
    : mode_(mode), owned_(std::move(owned)) {
  final_dir = final_dir.lexically_normal();
  if (!final_dir.has_filename()) final_dir = final_dir.parent_path();  // "out/" → "out"
  if (final_dir.empty()) final_dir = ".";
  final_dir_ = final_dir;
  std::error_code ec;
  if (fs::is_symlink(final_dir_, ec)) final_dir_ = fs::canonical(final_dir_, ec);  // replace the folder it names
  if (fs::exists(final_dir_, ec) && !fs::is_directory(final_dir_, ec))
    throw Error(final_dir_.string() + ": exists and is not a directory");
  // Parents this run creates are removed again if it fails.
  const fs::path target = mode_ == Mode::ReplaceFolder ? fs::absolute(final_dir_).parent_path() : fs::absolute(final_dir_);
  for (fs::path p = target; !p.empty() && !fs::exists(p, ec); p = p.parent_path()) {
    created_parents_.insert(created_parents_.begin(), p);
    if (p == p.parent_path()) break;
  }
  fs::create_directories(target, ec);
  if (ec) {
    cleanup();
    throw Error(target.string() + ": cannot create: " + ec.message());
  }
  if (mode_ == Mode::ReplaceFolder) {
    sweep_stale(target);
    sweep_stale(final_dir_);  // staging folders of older versions lived inside OUT_DIR
    staging_ = target / ("." + final_dir_.filename().string() + pid_suffix());
  } else {
    sweep_stale(target);
    staging_ = target / pid_suffix();
  }
  fs::remove_all(staging_, ec);
  register_cleanup(staging_);
  fs::create_directory(staging_, ec);
  if (ec) {
    cleanup();
    throw Error(staging_.string() + ": cannot create: " + ec.message());
  }
}

OutputDir::~OutputDir() {
  if (!committed_) cleanup();
}

void OutputDir::cleanup() noexcept {
  std::error_code ec;
  if (!staging_.empty()) {
    fs::remove_all(staging_, ec);
    unregister_cleanup(staging_);
  }
  for (const auto& [tmp, final_path] : side_files_) {
    fs::remove(tmp, ec);
    unregister_cleanup(tmp);
  }
  for (auto it = created_parents_.rbegin(); it != created_parents_.rend(); ++it) fs::remove(*it, ec);  // only if empty
}

bool OutputDir::is_owned(const std::string& name) const {
  return ends_with(name, ".onnx") || ends_with(name, ".onnx_data") || (owned_ && owned_(name));
}

fs::path OutputDir::stage(const std::string& name) {
  const fs::path p = staging_ / name;
  if (p.parent_path() != staging_) {  // "onnx/model.onnx": the staged subfolder exists once asked for
    std::error_code ec;
    fs::create_directories(p.parent_path(), ec);
    if (ec) throw Error(p.parent_path().string() + ": cannot create: " + ec.message());
  }
  return p;
}

void OutputDir::copy_in(const fs::path& source, const std::string& name) {
  std::error_code ec;
  fs::copy_file(source, stage(name), fs::copy_options::overwrite_existing, ec);
  if (ec) throw Error(source.string() + ": cannot copy: " + ec.message());
  fs::permissions(stage(name), fs::perms::owner_write, fs::perm_options::add, ec);  // sources may be read-only
}

void OutputDir::add_side_file(const fs::path& path, const std::string& content) {
  std::error_code ec;
  if (fs::weakly_canonical(fs::absolute(path).parent_path(), ec) == fs::weakly_canonical(fs::absolute(final_dir_), ec)) {
    std::ofstream f(stage(path.filename().string()), std::ios::binary);  // inside OUT_DIR: part of the new set
    f << content;
    if (!f) throw Error(path.string() + ": cannot write");
    return;
  }
  const fs::path tmp = path.parent_path() / ("." + path.filename().string() + pid_suffix());
  register_cleanup(tmp);
  side_files_.emplace_back(tmp, path);
  std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
  f << content;
  f.close();
  if (!f) throw Error(path.string() + ": cannot write");
}

std::vector<std::pair<fs::path, uint64_t>> OutputDir::staged_files() const {
  std::vector<std::pair<fs::path, uint64_t>> out;
  for (const auto& e : fs::recursive_directory_iterator(staging_))
    if (e.is_regular_file()) out.emplace_back(final_dir_ / e.path().lexically_relative(staging_), e.file_size());
  std::sort(out.begin(), out.end());
  return out;
}

void OutputDir::commit_folder() {
  std::error_code ec;
  if (!fs::exists(final_dir_, ec)) {
    fs::rename(staging_, final_dir_, ec);
    if (ec) throw Error(final_dir_.string() + ": cannot move into place: " + ec.message());
    return;
  }
  // Carry over what hf2onnx does not own: files as hard links (copies across devices), folders moved
  // just before the swap (and moved back if it fails).
  std::vector<fs::path> moved_dirs;
  for (const auto& e : fs::directory_iterator(final_dir_)) {
    const std::string name = e.path().filename().string();
    if (is_owned(name) || fs::exists(staging_ / name, ec)) continue;
    if (std::regex_match(name, staging_name())) continue;
    if (e.is_directory(ec) && !e.is_symlink(ec)) {
      moved_dirs.push_back(e.path());
      continue;
    }
    fs::create_hard_link(e.path(), staging_ / name, ec);
    if (ec) fs::copy(e.path(), staging_ / name, fs::copy_options::copy_symlinks, ec);
    if (ec) throw Error(e.path().string() + ": cannot keep it in the new output folder: " + ec.message());
  }
  auto move_back = [&] {
    std::error_code ignored;
    for (const auto& d : moved_dirs) fs::rename(staging_ / d.filename(), d, ignored);
  };
  for (const auto& d : moved_dirs) {
    fs::rename(d, staging_ / d.filename(), ec);
    if (ec) {
      move_back();
      throw Error(d.string() + ": cannot keep it in the new output folder: " + ec.message());
    }
  }
  // Swap: afterwards staging_ holds the old folder. (The test hook takes the path of file systems without
  // RENAME_EXCHANGE.)
  if (!std::getenv("HF2ONNX_TEST_NO_RENAME_EXCHANGE") &&
      renameat2(AT_FDCWD, staging_.c_str(), AT_FDCWD, final_dir_.c_str(), RENAME_EXCHANGE) == 0) {
    fs::remove_all(staging_, ec);
    return;
  }
  // No RENAME_EXCHANGE on this file system: old folder aside, new one in, old one removed.
  const fs::path old = staging_.parent_path() / ("." + final_dir_.filename().string() + ".hf2onnx-old." +
                                                 std::to_string(getpid()));
  register_cleanup(old);
  fs::rename(final_dir_, old, ec);
  if (ec) {
    unregister_cleanup(old);
    move_back();
    throw Error(final_dir_.string() + ": cannot replace: " + ec.message());
  }
  fs::rename(staging_, final_dir_, ec);
  if (ec) {
    std::error_code ignored;
    fs::rename(old, final_dir_, ignored);
    unregister_cleanup(old);
    move_back();
    throw Error(final_dir_.string() + ": cannot replace: " + ec.message());
  }
  unregister_cleanup(old);
  fs::remove_all(old, ec);
}

void OutputDir::commit_files() {
  std::error_code ec;
  std::vector<fs::path> staged;
  for (const auto& e : fs::directory_iterator(staging_)) staged.push_back(e.path());
  // External data before the models that refer to it; a model's old external data file goes first.
  std::sort(staged.begin(), staged.end(), [](const fs::path& a, const fs::path& b) {
    const bool da = ends_with(a.string(), "_data"), db = ends_with(b.string(), "_data");
    return da != db ? da : a < b;
  });
  std::set<std::string> names;  // what this run wrote (the data files are moved out of staging first)
  for (const auto& p : staged) names.insert(p.filename().string());
  for (const auto& p : staged) {
    const std::string name = p.filename().string();
    if (ends_with(name, ".onnx") && !names.count(name + "_data")) fs::remove(final_dir_ / (name + "_data"), ec);
    fs::rename(p, final_dir_ / name, ec);
    if (ec) throw Error((final_dir_ / name).string() + ": cannot move into place: " + ec.message());
  }
  fs::remove_all(staging_, ec);
}

std::vector<fs::path> OutputDir::commit() {
  // Test hook: hold the staged files for a while so that a test can interrupt the run right here.
  if (const char* ms = std::getenv("HF2ONNX_TEST_PAUSE_BEFORE_COMMIT_MS")) usleep(static_cast<useconds_t>(std::atoi(ms)) * 1000);
  std::vector<fs::path> out;
  for (const auto& [path, size] : staged_files()) out.push_back(path);
  if (mode_ == Mode::ReplaceFolder) commit_folder();
  else commit_files();
  unregister_cleanup(staging_);
  committed_ = true;
  std::error_code ec;
  for (const auto& [tmp, final_path] : side_files_) {
    fs::rename(tmp, final_path, ec);
    unregister_cleanup(tmp);
    if (ec) throw Error(final_path.string() + ": cannot write: " + ec.message());
  }
  return out;
}

}  // namespace hf2onnx
