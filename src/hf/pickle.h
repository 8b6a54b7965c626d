// A restricted unpickler for torch checkpoints, in the spirit of torch.load(weights_only=True):
// it builds plain values and accepts only an allow-list of globals (OrderedDict, the tensor rebuild
// functions and the storage types). Anything else is refused with an error naming the global.
// Nothing is executed; every read is bounds-checked.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "hf/tensor_data.h"

namespace hf2onnx::hf::pickle {

struct Object;
using Ref = std::shared_ptr<Object>;

enum class Kind { None, Bool, Int, BigInt, Float, Str, Bytes, Tuple, List, Dict, Global, Storage, Tensor };

struct Object {
  Kind kind = Kind::None;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;  // Str / Bytes / BigInt (little-endian two's complement) / Global ("module.name")
  std::vector<Ref> items;                   // Tuple, List
  std::vector<std::pair<Ref, Ref>> dict;    // Dict (insertion order)
  // Storage (from a persistent id): which bytes of the archive back it.
  std::string storage_key;
  DType storage_dtype = DType::F32;
  int64_t storage_numel = 0;
  int64_t storage_view_offset = 0;  // legacy view storages: element offset into the root storage
  // Tensor (from _rebuild_tensor_v2): a strided view of a storage.
  Ref storage;
  int64_t offset = 0;
  std::vector<int64_t> shape, strides;
};

// Called for BINPERSID with the persistent id; returns a Storage object.
using PersistentLoad = std::function<Ref(const Ref& pid)>;

struct Result {
  Ref value;
  size_t end = 0;  // offset just past STOP, where a following pickle may begin (legacy format)
  // Owns every object the pickle created; releasing it clears their children, so that a pickle whose
  // containers refer to themselves (memo + SETITEM) cannot leak. Keep the Result while using `value`.
  std::shared_ptr<void> arena;
  uint64_t memory = 0;  // what the load charged to its memory budget (64 MB + 64 bytes per input byte)
};

// Parses one pickle starting at data[0]. `source` names the file in errors.
Result load(const uint8_t* data, size_t size, const PersistentLoad& persistent_load, const std::string& source);

// For persistent ids: the storage dtype of a global such as torch.FloatStorage.
DType storage_dtype(const Object& global, const std::string& source);

}  // namespace hf2onnx::hf::pickle
