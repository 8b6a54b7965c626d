#include "export/lowering/table.h"

#include <cstdlib>
#include <cstring>

#include "hf2onnx/error.h"

namespace hf2onnx {

bool test_fault(const char* name) {
  const char* f = std::getenv("HF2ONNX_TEST_FAULT");
  return f && std::strcmp(f, name) == 0;
}

void LoweringTable::add(const std::string& op, int since_opset, LowerFn fn) {
  if (!entries_[op].emplace(since_opset, fn).second)
    throw Error("lowering table: " + op + " registered twice for opset " + std::to_string(since_opset));
}

LowerFn LoweringTable::find(const std::string& op, int opset) const {
  auto it = entries_.find(op);
  if (it == entries_.end()) return nullptr;
  auto v = it->second.upper_bound(opset);  // first entry above the target
  if (v == it->second.begin()) return nullptr;
  return std::prev(v)->second;
}

std::vector<int> LoweringTable::opsets(const std::string& op) const {
  std::vector<int> out;
  auto it = entries_.find(op);
  if (it != entries_.end())
    for (const auto& [v, fn] : it->second) out.push_back(v);
  return out;
}

std::vector<std::string> LoweringTable::ops() const {
  std::vector<std::string> out;
  for (const auto& [op, v] : entries_) out.push_back(op);
  return out;
}

static LoweringTable register_all_ops() {
  LoweringTable table;
  register_elementwise_ops(table);
  register_shape_ops(table);
  register_nn_ops(table);
  return table;
}

const LoweringTable& lowering_table() {
  static const LoweringTable table = register_all_ops();
  return table;
}

}  // namespace hf2onnx
