#include "hf/hub_cache.h"

#include <cstdlib>
#include <fstream>
#include <regex>

#include "hf2onnx/error.h"

namespace hf2onnx::hf {
namespace fs = std::filesystem;

namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

bool is_model_id(const std::string& s) {  // huggingface_hub's repo id rules, as far as a path can be confused
  static const std::regex kId("^([A-Za-z0-9][A-Za-z0-9_.-]{0,95}/)?[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$");
  return std::regex_match(s, kId) && s.find("..") == std::string::npos && s.find("--") == std::string::npos;
}

bool is_commit(const std::string& s) {
  static const std::regex kHex("^[0-9a-f]{7,40}$");
  return std::regex_match(s, kHex);
}

std::string read_ref(const fs::path& file) {
  std::ifstream in(file);
  std::string s;
  std::getline(in, s);
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

std::vector<fs::path> hub_cache_dirs() {
  if (!env("HF_HUB_CACHE").empty()) return {env("HF_HUB_CACHE")};
  if (!env("HF_HOME").empty()) return {fs::path(env("HF_HOME")) / "hub"};
  const std::string home = env("HOME");
  return {(home.empty() ? fs::path("~") : fs::path(home)) / ".cache" / "huggingface" / "hub"};
}

fs::path resolve_model(const std::string& model, const std::string& revision) {
  std::error_code ec;
  if (fs::exists(model, ec)) return model;
  if (!is_model_id(model)) throw Error(model + ": no such file or folder");
  std::string folder = "models--" + model;
  for (size_t i = 0; (i = folder.find('/', i)) != std::string::npos;) folder.replace(i, 1, "--");
  std::string searched;
  for (const fs::path& cache : hub_cache_dirs()) {
    const fs::path repo = cache / folder;
    searched += (searched.empty() ? "" : ", ") + repo.string();
    if (!fs::is_directory(repo, ec)) continue;
    std::string commit;
    const fs::path ref = repo / "refs" / revision;
    if (revision.find("..") == std::string::npos && fs::is_regular_file(ref, ec)) {
      commit = read_ref(ref);
      if (!is_commit(commit)) throw Error(ref.string() + ": not a commit hash");
    } else if (is_commit(revision)) {
      std::vector<std::string> matches;
      for (const auto& e : fs::directory_iterator(repo / "snapshots", ec))
        if (e.path().filename().string().rfind(revision, 0) == 0) matches.push_back(e.path().filename().string());
      if (matches.size() > 1) throw Error(repo.string() + ": revision " + revision + " matches several snapshots");
      if (matches.size() == 1) commit = matches[0];
    }
    if (commit.empty())
      throw Error(model + ": revision '" + revision + "' is not in the cache (" + repo.string() +
                  " has no refs/" + revision + " and no matching snapshot); download it with: huggingface-cli download " +
                  model + " --revision " + revision);
    const fs::path snapshot = repo / "snapshots" / commit;
    if (!fs::is_directory(snapshot, ec))
      throw Error(model + ": the cache names commit " + commit + " but " + snapshot.string() + " is missing");
    return snapshot;
  }
  throw Error(model + ": not a folder here and not in the Hugging Face cache (searched " + searched +
              "); download it with: huggingface-cli download " + model +
              (revision == "main" ? "" : " --revision " + revision));
}

}  // namespace hf2onnx::hf
