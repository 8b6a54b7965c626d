#include "cli/batch.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <vector>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "common/log.h"
#include "hf2onnx/error.h"

extern char** environ;

namespace hf2onnx {
namespace fs = std::filesystem;

namespace {

struct Job {
  size_t index = 0;  // in the manifest
  std::string model, out;
  std::vector<std::string> args;  // after "hf2onnx"
  fs::path report, log;
  std::string status = "skipped";  // passed | failed | skipped
  int exit_code = -1;
  double started = 0, seconds = 0;  // since the batch began; how long the export took
  std::string error;  // the last error line of a failed export
  pid_t pid = -1;
  std::chrono::steady_clock::time_point start;
};

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The manifest's options as `hf2onnx export` flags. Unknown keys are errors: a misspelt option must not
// silently export something else.
std::vector<std::string> export_args(const nlohmann::json& e, const std::string& where, const fs::path& base,
                                     std::string& model, std::string& out) {
  auto str = [&](const char* key) -> std::string {
    const auto& v = e.at(key);
    if (!v.is_string() || v.get<std::string>().empty()) throw Error(where + ": \"" + key + "\" must be a non-empty string");
    return v.get<std::string>();
  };
  if (!e.is_object()) throw Error(where + ": each model must be an object");
  for (const char* key : {"model", "out"})
    if (!e.contains(key)) throw Error(where + ": \"" + key + "\" is missing");
  model = str("model");
  std::error_code ec;
  if (fs::path(model).is_relative() && fs::exists(base / model, ec)) model = (base / model).string();  // else an id
  out = str("out");
  if (fs::path(out).is_relative()) out = (base / out).string();
  std::vector<std::string> args = {"export", model, out};
  for (const auto& [key, v] : e.items()) {
    if (key == "model" || key == "out") continue;
    if (key == "task" || key == "revision" || key == "layout") {
      args.insert(args.end(), {"--" + key, str(key.c_str())});
    } else if (key == "opset") {
      if (!v.is_number_integer()) throw Error(where + ": \"opset\" must be an integer");
      args.insert(args.end(), {"--opset", std::to_string(v.get<int>())});
    } else if (key == "external_data" || key == "keep_weight_dtype") {
      if (!v.is_boolean()) throw Error(where + ": \"" + key + "\" must be true or false");
      if (v.get<bool>()) args.push_back("--" + std::regex_replace(key, std::regex("_"), "-"));
    } else if (key == "quantize") {
      if (v.is_boolean()) {
        if (v.get<bool>()) args.push_back("--quantize");
        continue;
      }
      if (!v.is_object()) throw Error(where + ": \"quantize\" must be true, false or an object of options");
      args.push_back("--quantize");
      for (const auto& [q, qv] : v.items()) {
        const std::string flag = "--" + std::regex_replace(q, std::regex("_"), "-");
        if (q == "per_channel" || q == "reduce_range") {
          if (!qv.is_boolean()) throw Error(where + ": quantize \"" + q + "\" must be true or false");
          if (qv.get<bool>()) args.push_back(flag);
        } else if (q == "target" || q == "weight_type" || q == "exclude_nodes") {
          if (!qv.is_string()) throw Error(where + ": quantize \"" + q + "\" must be a string");
          args.insert(args.end(), {flag, qv.get<std::string>()});
        } else if (q == "op_types") {
          std::string list;
          if (qv.is_string()) list = qv.get<std::string>();
          else if (qv.is_array())
            for (const auto& op : qv) list += (list.empty() ? "" : ",") + (op.is_string() ? op.get<std::string>() : "");
          else throw Error(where + ": quantize \"op_types\" must be a string or a list of strings");
          args.insert(args.end(), {flag, list});
        } else {
          throw Error(where + ": unknown quantize option \"" + q +
                      "\" (target, per_channel, reduce_range, weight_type, op_types, exclude_nodes)");
        }
      }
    } else {
      throw Error(where + ": unknown key \"" + key +
                  "\" (model, out, task, quantize, revision, opset, layout, external_data, keep_weight_dtype)");
    }
  }
  return args;
}

std::string xml_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t') out += ' ';  // not allowed in XML 1.0
        else out += c;
    }
  }
  return out;
}

// Written under a temporary name and renamed, like everything hf2onnx writes.
void write_atomically(const fs::path& path, const std::string& content) {
  const fs::path tmp = path.parent_path() / ("." + path.filename().string() + ".hf2onnx-tmp." + std::to_string(getpid()));
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f << content;
    if (!f) throw Error(path.string() + ": cannot write");
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    throw Error(path.string() + ": cannot write: " + ec.message());
  }
}

std::string last_error_line(const fs::path& log) {
  std::istringstream in(read_text(log));
  std::string line, last;
  while (std::getline(in, line))
    if (line.find("[error]") != std::string::npos || (last.empty() && !line.empty())) last = line;
  const std::string tag = "[error] ";
  const size_t at = last.find(tag);
  return at == std::string::npos ? last : last.substr(at + tag.size());
}

pid_t spawn(const std::vector<std::string>& args, const fs::path& log) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  std::vector<std::string> argv_s = {"hf2onnx"};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, "/proc/self/exe", &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw Error(std::string("cannot start hf2onnx export: ") + std::strerror(rc));
  return pid;
}

}  // namespace

void parse_shard(const std::string& text, BatchOptions& o) {
  static const std::regex kShard("^([0-9]{1,6})/([0-9]{1,6})$");
  std::smatch m;
  if (!std::regex_match(text, m, kShard)) throw Error("--shard " + text + ": expected K/N, e.g. 1/4");
  o.shard = std::stoi(m[1].str());
  o.shards = std::stoi(m[2].str());
  if (o.shards < 1 || o.shard < 1 || o.shard > o.shards) throw Error("--shard " + text + ": K must be between 1 and N");
}

int run_batch(const BatchOptions& opt) {
  Stopwatch total;
  const fs::path manifest = fs::absolute(opt.manifest);
  if (!fs::is_regular_file(manifest)) throw Error(manifest.string() + ": no such file");
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(read_text(manifest));
  } catch (const nlohmann::json::exception& e) {
    throw Error(manifest.string() + ": not valid JSON: " + e.what());
  }
  if (!doc.is_object() || !doc.contains("models") || !doc["models"].is_array())
    throw Error(manifest.string() + ": expected {\"models\": [...]}");
  const fs::path base = manifest.parent_path();
  const std::string stem = manifest.stem().string();
  const fs::path results = opt.results.empty() ? base / (stem + ".results") : fs::absolute(opt.results);
  const fs::path junit = opt.junit.empty() ? base / (stem + ".junit.xml") : fs::absolute(opt.junit);
  std::error_code ec;
  fs::create_directories(results, ec);
  if (ec) throw Error(results.string() + ": cannot create: " + ec.message());

  // Every entry is checked before anything runs; this shard's are kept.
  std::vector<Job> jobs;
  const auto& models = doc["models"];
  for (size_t i = 0; i < models.size(); ++i) {
    Job j;
    j.index = i;
    const std::string where = manifest.string() + ": models[" + std::to_string(i) + "]";
    j.args = export_args(models[i], where, base, j.model, j.out);
    if (static_cast<int>(i % static_cast<size_t>(opt.shards)) != opt.shard - 1) continue;
    const std::string name = std::to_string(i) + "-" + std::regex_replace(fs::path(j.out).filename().string(),
                                                                          std::regex("[^A-Za-z0-9_.-]"), "_");
    j.report = results / (name + ".json");
    j.log = results / (name + ".log");
    fs::remove(j.report, ec);
    j.args.insert(j.args.end(), {"--report", j.report.string()});
    jobs.push_back(std::move(j));
  }
  spdlog::info("batch {}: {} of {} models in shard {}/{}, {} at a time", manifest.filename().string(), jobs.size(),
               models.size(), opt.shard, opt.shards, opt.jobs);

  std::map<pid_t, size_t> running;
  size_t next = 0;
  bool stop = false;
  while (next < jobs.size() || !running.empty()) {
    while (!stop && next < jobs.size() && static_cast<int>(running.size()) < opt.jobs) {
      Job& j = jobs[next];
      j.start = std::chrono::steady_clock::now();
      j.started = total.seconds();
      j.pid = spawn(j.args, j.log);
      running[j.pid] = next++;
      spdlog::info("[{}/{}] {} → {}", next, jobs.size(), j.model, j.out);
    }
    if (running.empty()) break;  // stopped: the rest stay skipped
    int status = 0;
    const pid_t pid = waitpid(-1, &status, 0);
    if (pid < 0) {
      if (errno == EINTR) continue;
      throw Error(std::string("waiting for the exports: ") + std::strerror(errno));
    }
    auto it = running.find(pid);
    if (it == running.end()) continue;
    Job& j = jobs[it->second];
    running.erase(it);
    j.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - j.start).count();
    j.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    j.status = j.exit_code == 0 ? "passed" : "failed";
    if (j.exit_code != 0) {
      j.error = last_error_line(j.log);
      spdlog::error("{} → {}: failed (exit {}) in {:.1f} s: {}", j.model, j.out, j.exit_code, j.seconds, j.error);
      if (!opt.keep_going) stop = true;
    } else {
      spdlog::info("{} → {}: done in {:.1f} s", j.model, j.out, j.seconds);
    }
  }

  int passed = 0, failed = 0, skipped = 0;
  nlohmann::json summary = {{"manifest", manifest.string()},
                            {"shard", std::to_string(opt.shard) + "/" + std::to_string(opt.shards)},
                            {"jobs", opt.jobs},
                            {"models", nlohmann::json::array()}};
  std::ostringstream cases;
  for (const Job& j : jobs) {
    passed += j.status == "passed";
    failed += j.status == "failed";
    skipped += j.status == "skipped";
    nlohmann::json m = {{"index", j.index}, {"model", j.model}, {"out", j.out}, {"status", j.status},
                        {"exit_code", j.exit_code}, {"started", j.started}, {"seconds", j.seconds},
                        {"log", j.log.string()}};
    if (fs::exists(j.report)) m["report"] = j.report.string();
    if (!j.error.empty()) m["error"] = j.error;
    summary["models"].push_back(m);
    cases << "  <testcase classname=\"hf2onnx.export\" name=\"" << xml_escape(j.model + " -> " + j.out) << "\" time=\""
          << j.seconds << "\">";
    if (j.status == "failed")
      cases << "\n    <failure message=\"" << xml_escape(j.error) << "\">" << xml_escape(read_text(j.log))
            << "</failure>\n  ";
    else if (j.status == "skipped")
      cases << "<skipped message=\"not started: an earlier model failed (--keep-going runs them all)\"/>";
    cases << "</testcase>\n";
  }
  summary["passed"] = passed;
  summary["failed"] = failed;
  summary["skipped"] = skipped;
  summary["seconds"] = total.seconds();
  write_atomically(results / "summary.json", summary.dump(2) + "\n");
  std::ostringstream xml;
  xml << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuite name=\"hf2onnx batch " << xml_escape(manifest.filename().string())
      << "\" tests=\"" << jobs.size() << "\" failures=\"" << failed << "\" errors=\"0\" skipped=\"" << skipped
      << "\" time=\"" << total.seconds() << "\">\n"
      << cases.str() << "</testsuite>\n";
  write_atomically(junit, xml.str());
  spdlog::info("batch: {} passed, {} failed, {} skipped in {:.1f} s; {} and {}", passed, failed, skipped, total.seconds(),
               (results / "summary.json").string(), junit.string());
  return failed || skipped ? 1 : 0;
}

}  // namespace hf2onnx
