#include "models/loader.h"

#include <regex>
#include <set>

#include "hf2onnx/error.h"

namespace hf2onnx {

torch::Tensor to_float_tensor(const hf::TensorData& t) {
  if (!hf::dtype_is_floating(t.dtype))
    throw Error(t.source + ": tensor has dtype " + hf::dtype_name(t.dtype) + " where a floating weight is expected");
  if (t.dtype == hf::DType::F32) {
    auto owner = t.owner;
    return torch::from_blob(const_cast<uint8_t*>(t.data), t.shape, t.strides, [owner](void*) {},
                            torch::TensorOptions().dtype(torch::kFloat));
  }
  auto out = torch::empty(t.shape, torch::kFloat);
  hf::convert_to_float32(t, out.data_ptr<float>());
  return out;
}

namespace {
std::string join_some(const std::vector<std::string>& v, size_t limit = 5) {
  std::string s;
  for (size_t i = 0; i < v.size() && i < limit; ++i) s += (i ? ", " : "") + quote_name(v[i]);
  if (v.size() > limit) s += " and " + std::to_string(v.size() - limit) + " more";
  return s;
}
}  // namespace

LoadSummary load_weights(torch::nn::Module& module, const hf::Checkpoint& ck, const LoadRules& rules,
                         bool strict_unused, const std::string& where, bool defer_conversion) {
  LoadSummary summary;
  std::set<std::string> used;
  std::vector<std::string> missing, wrong_shape;
  for (auto& item : module.named_parameters(/*recurse=*/true)) {
    const std::string& name = item.key();
    torch::Tensor& param = item.value();
    const hf::TensorData* found = nullptr;
    std::string key = name;
    auto it = ck.tensors.find(name);
    if (it != ck.tensors.end()) found = &it->second;
    for (size_t i = 0; !found && i < rules.optional_prefixes.size(); ++i) {
      const std::string& prefix = rules.optional_prefixes[i];
      const bool prefixed = name.rfind(prefix, 0) == 0;
      key = prefixed ? name.substr(prefix.size()) : prefix + name;  // stored without, or with, the prefix
      auto jt = ck.tensors.find(key);
      if (jt != ck.tensors.end()) found = &jt->second;
    }
    if (!found) {
      missing.push_back(name);
      continue;
    }
    if (found->shape != param.sizes().vec()) {
      wrong_shape.push_back("tensor " + quote_name(key) + " has wrong shape: the model expects " + hf::shape_str(param.sizes().vec()) +
                            ", the checkpoint has " + hf::shape_str(found->shape));
      continue;
    }
    if (defer_conversion && found->dtype != hf::DType::F32) {
      if (!hf::dtype_is_floating(found->dtype)) to_float_tensor(*found);  // throws: not a floating weight
      param.set_data(torch::zeros({1}, torch::kFloat).expand(found->shape));  // shape only, no memory
      summary.deferred[key] = found;
    } else {
      param.set_data(to_float_tensor(*found));
    }
    used.insert(key);
    summary.checkpoint_keys[name] = key;
    summary.parameters++;
    summary.bytes += static_cast<uint64_t>(param.numel()) * 4;
  }
  if (!wrong_shape.empty())
    throw Error(where + ": " + wrong_shape.front() +
                (wrong_shape.size() > 1 ? " (and " + std::to_string(wrong_shape.size() - 1) + " more)" : ""));
  if (!missing.empty())
    throw Error(where + ": missing tensor" + (missing.size() > 1 ? "s " : " ") + join_some(missing) +
                " (the config describes tensors the checkpoint does not have)");

  std::vector<std::regex> ignored;
  for (const auto& p : rules.ignored_keys) ignored.emplace_back(p);
  for (const auto& [key, t] : ck.tensors) {
    if (used.count(key)) continue;
    bool expected = false;
    for (const auto& re : ignored) expected = expected || std::regex_match(key, re);
    if (!expected) summary.unused.push_back(key);
  }
  if (strict_unused && !summary.unused.empty())
    throw Error(where + ": unused tensor" + (summary.unused.size() > 1 ? "s " : " ") + join_some(summary.unused) +
                " (the checkpoint has tensors this architecture and config do not use)");
  return summary;
}

}  // namespace hf2onnx
