// The versioned aten → ONNX lowering table (PyTorch's symbolic registry rule): each aten op is
// registered with the opset its lowering needs; a lookup takes the newest entry ≤ the target opset.
// Category files each expose register_*_ops(table); register_all_ops() calls them all.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "export/lowering/context.h"
#include "hf2onnx/export.h"  // kMinOpset, kMaxOpset

namespace hf2onnx {

using LowerFn = void (*)(LoweringContext& ctx, const Node* node);

class LoweringTable {
 public:
  void add(const std::string& op, int since_opset, LowerFn fn);
  // nullptr when the op has no lowering at or below `opset`.
  LowerFn find(const std::string& op, int opset) const;
  std::vector<int> opsets(const std::string& op) const;  // where the op has an entry
  std::vector<std::string> ops() const;

 private:
  std::map<std::string, std::map<int, LowerFn>> entries_;
};


const LoweringTable& lowering_table();

// Test-only faults, to prove that the verify stage catches a wrong lowering: HF2ONNX_TEST_FAULT names one
// ("cumsum_off_by_one": positions start at 1; "layer_norm_default_eps": the config's layer_norm_eps ignored).
// Never set outside the tests.
bool test_fault(const char* name);  // built once by register_all_ops()

void register_elementwise_ops(LoweringTable& table);
void register_shape_ops(LoweringTable& table);
void register_nn_ops(LoweringTable& table);

}  // namespace hf2onnx
