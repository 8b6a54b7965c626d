#include "models/loader.h"

#include <algorithm>
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
// The checkpoint tensor for `name`: stored under it, or without / with one of the optional prefixes.
std::pair<const hf::TensorData*, std::string> find_key(const hf::Checkpoint& ck, const std::string& name, const LoadRules& rules) {
  auto it = ck.tensors.find(name);
  if (it != ck.tensors.end()) return {&it->second, name};
  for (const std::string& prefix : rules.optional_prefixes) {
    const bool prefixed = name.rfind(prefix, 0) == 0;
    const std::string key = prefixed ? name.substr(prefix.size()) : prefix + name;  // stored without, or with, the prefix
    auto jt = ck.tensors.find(key);
    if (jt != ck.tensors.end()) return {&jt->second, key};
  }
  return {nullptr, name};
}

// A derived parameter from the first complete spelling of its sources; false when none is complete. Its
// initializer name is the parameter's, with the prefix its first source was found under.
bool load_derived(const LoadRules::Derived& d, torch::Tensor& param, const hf::Checkpoint& ck, const LoadRules& rules,
                  std::set<std::string>& used, LoadSummary& summary, const std::string& where) {
  for (const auto& keys : d.sources) {
    std::vector<torch::Tensor> inputs;
    std::vector<std::string> found_keys;
    for (const auto& k : keys) {
      auto [t, key] = find_key(ck, k, rules);
      if (!t) break;
      inputs.push_back(to_float_tensor(*t));
      found_keys.push_back(key);
    }
    if (found_keys.size() != keys.size()) continue;
    torch::Tensor value;
    try {
      torch::NoGradGuard no_grad;
      value = d.compute(inputs).contiguous();
    } catch (const std::exception& e) {  // the sources' shapes come from the file: name them and the problem
      throw Error(where + ": tensors " + join_some(found_keys) + " cannot make " + quote_name(d.name) + ": " +
                  std::string(e.what()).substr(0, std::string(e.what()).find('\n')));
    }
    if (value.sizes() != param.sizes())
      throw Error(where + ": tensors " + join_some(found_keys) + " give " + quote_name(d.name) + " the shape " +
                  hf::shape_str(value.sizes().vec()) + ", the model expects " + hf::shape_str(param.sizes().vec()));
    param.set_data(value);
    used.insert(found_keys.begin(), found_keys.end());
    const std::string& k0 = keys.front(), &f0 = found_keys.front();  // f0 = k0 with a prefix added or removed
    summary.checkpoint_keys[d.name] = f0.size() >= k0.size() ? f0.substr(0, f0.size() - k0.size()) + d.name
                                                              : d.name.substr(k0.size() - f0.size());
    summary.parameters++;
    summary.bytes += static_cast<uint64_t>(param.numel()) * 4;
    return true;
  }
  return false;
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
    auto derived = std::find_if(rules.derived.begin(), rules.derived.end(), [&](const auto& d) { return d.name == name; });
    if (derived != rules.derived.end()) {
      if (!load_derived(*derived, param, ck, rules, used, summary, where)) missing.push_back(name);
      continue;
    }
    auto [found, key] = find_key(ck, name, rules);
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
