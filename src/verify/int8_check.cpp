#include "verify/int8_check.h"

#include <algorithm>
#include <cstdio>

#include "common/npy.h"
#include "hf2onnx/error.h"
#include "verify/compare.h"
#include "verify/ort_runner.h"

namespace hf2onnx {
namespace fs = std::filesystem;


nlohmann::json Int8Check::to_json() const {
  nlohmann::json j = {{"measured", measured}};
  if (!measured) {
    j["why_not"] = why_not;
    return j;
  }
  j["cpu"] = cpu;
  j["onnxruntime"] = ort_version;
  j["input"] = input;
  j["note"] = "measured on this machine's CPU; integer kernels differ between CPUs";
  j["outputs"] = nlohmann::json::array();
  for (const auto& o : outputs)
    j["outputs"].push_back({{"output", o.output}, {"cosine", o.cosine}, {"argmax_agreement", o.argmax_agreement}});
  return j;
}

std::string Int8Check::summary() const {
  std::string s;
  for (const auto& o : outputs) {
    if (o.output.rfind("present.", 0) == 0) continue;
    char buf[160];
    std::snprintf(buf, sizeof buf, "%s%s cosine %.5f, argmax agreement %.3f", s.empty() ? "" : "; ", o.output.c_str(),
                  o.cosine, o.argmax_agreement);
    s += buf;
  }
  return s;
}

Int8Check compare_int8(const fs::path& fp32, const fs::path& int8, const fs::path& inputs_dir,
                       const std::string& input_description) {
  Int8Check check;
  auto runner = OrtRunner::find(&check.why_not);
  if (!runner) return check;
  const fs::path out = inputs_dir.parent_path() / "outputs";
  runner->run({{fp32, inputs_dir, out / "fp32"}, {int8, inputs_dir, out / "int8"}});
  check.measured = true;
  check.cpu = cpu_summary();
  check.ort_version = runner->version();
  check.input = input_description;
  for (const auto& e : fs::directory_iterator(out / "fp32")) {
    NpyArray f = read_npy(e.path());
    if (f.dtype != "<f4") continue;
    NpyArray q = read_npy(out / "int8" / e.path().filename());
    check.outputs.push_back({e.path().stem().string(), cosine(f, q), argmax_agreement(f, q)});
  }
  std::sort(check.outputs.begin(), check.outputs.end(),
            [](const OutputAgreement& a, const OutputAgreement& b) { return a.output < b.output; });
  return check;
}

}  // namespace hf2onnx
