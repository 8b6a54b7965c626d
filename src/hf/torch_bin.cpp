#include "hf/torch_bin.h"

#include <cstring>

#include "common/mapped_file.h"
#include "hf/pickle.h"
#include "hf/zip_reader.h"
#include "hf2onnx/error.h"

namespace hf2onnx::hf {
namespace {

using pickle::Kind;
using pickle::Ref;

struct StorageBytes {
  const uint8_t* data;
  uint64_t size;
};

// Checks a tensor view against its storage and returns it as TensorData. Everything here comes from
// the file: sizes, strides and offsets are checked in bytes with overflow-checked arithmetic.
TensorData make_tensor(const std::string& name, const pickle::Object& t, const StorageBytes& bytes,
                       const std::shared_ptr<const MappedFile>& file) {
  const std::string where = file->path().string();
  auto bad = [&](const std::string& why) { return Error(where + ": corrupt checkpoint: tensor " + quote_name(name) + ": " + why); };
  const pickle::Object& s = *t.storage;
  const uint64_t es = dtype_size(s.storage_dtype);
  // The storage (or, in the legacy format, the view of its root storage) is
  // [storage_view_offset, storage_view_offset + storage_numel) elements of the bytes.
  uint64_t storage_end = 0, storage_end_bytes = 0;
  if (s.storage_numel < 0 || s.storage_view_offset < 0) throw bad("negative storage size or view offset");
  if (__builtin_add_overflow(static_cast<uint64_t>(s.storage_view_offset), static_cast<uint64_t>(s.storage_numel),
                             &storage_end) ||
      __builtin_mul_overflow(storage_end, es, &storage_end_bytes) || storage_end_bytes > bytes.size)
    throw bad(s.storage_view_offset ? "storage view (offset " + std::to_string(s.storage_view_offset) + ", " +
                                          std::to_string(s.storage_numel) + " elements) reaches outside its storage (" +
                                          std::to_string(bytes.size) + " bytes)"
                                    : "storage of " + std::to_string(s.storage_numel) +
                                          " elements is larger than its data (" + std::to_string(bytes.size) +
                                          " bytes; truncated?)");
  // The tensor: elements offset + sum(i_d * stride_d), i_d < shape_d, all inside the storage.
  // Zero dims count as 1 in the size check, so that contiguous strides of the shape cannot wrap either.
  uint64_t numel = 1, last = 0, bytes_nonzero = es;
  for (size_t d = 0; d < t.shape.size(); ++d) {
    if (t.shape[d] < 0 || t.strides[d] < 0) throw bad("negative size or stride");
    const uint64_t n = static_cast<uint64_t>(t.shape[d]), st = static_cast<uint64_t>(t.strides[d]);
    uint64_t span = 0;
    if (__builtin_mul_overflow(bytes_nonzero, n ? n : 1, &bytes_nonzero) || bytes_nonzero > uint64_t(INT64_MAX) ||
        (n > 0 && __builtin_mul_overflow(n - 1, st, &span)) || __builtin_add_overflow(last, span, &last))
      throw bad("size " + shape_str(t.shape) + " or stride " + shape_str(t.strides) + " overflows");
    numel *= n;
  }
  uint64_t end = 0;  // one past the last element, relative to the storage
  if (t.offset < 0 || __builtin_add_overflow(static_cast<uint64_t>(t.offset), numel ? last : 0, &end) ||
      __builtin_add_overflow(end, numel ? 1 : 0, &end) || end > static_cast<uint64_t>(s.storage_numel))
    throw bad("view (offset " + std::to_string(t.offset) + ", size " + shape_str(t.shape) + ", stride " +
              shape_str(t.strides) + ") reaches outside its storage of " + std::to_string(s.storage_numel) +
              " elements");
  TensorData out;
  out.dtype = s.storage_dtype;
  out.shape = t.shape;
  out.strides = t.strides;
  out.data = bytes.data + (static_cast<uint64_t>(s.storage_view_offset) + static_cast<uint64_t>(t.offset)) * es;
  out.owner = file;
  out.source = where;
  return out;
}

// The unpickled object must be a dict of name → tensor.
template <typename ResolveStorage>
std::map<std::string, TensorData> collect(const Ref& root, const std::shared_ptr<const MappedFile>& file,
                                          ResolveStorage&& resolve) {
  const std::string where = file->path().string();
  if (root->kind != Kind::Dict) throw Error(where + ": expected a state dict (name → tensor) at the top level");
  std::map<std::string, TensorData> out;
  for (const auto& [k, v] : root->dict) {
    if (k->kind != Kind::Str) throw Error(where + ": state dict has a non-string key");
    if (v->kind != Kind::Tensor) throw Error(where + ": state dict entry " + quote_name(k->s) + " is not a tensor");
    out[k->s] = make_tensor(k->s, *v, resolve(*v->storage), file);
  }
  return out;
}

const Ref& pid_field(const Ref& pid, size_t i, Kind kind, const std::string& where) {
  if (pid->kind != Kind::Tuple || pid->items.size() <= i || pid->items[i]->kind != kind ||
      pid->items[0]->kind != Kind::Str || pid->items[0]->s != "storage")
    throw Error(where + ": corrupt checkpoint: malformed storage reference in the pickle");
  return pid->items[i];
}

std::map<std::string, TensorData> read_zip(const std::shared_ptr<const MappedFile>& file) {
  const std::string where = file->path().string();
  ZipArchive zip(file);
  std::string prefix;
  for (const auto& [name, e] : zip.entries()) {
    auto slash = name.find('/');
    if (slash != std::string::npos && name.substr(slash) == "/data.pkl") {
      if (!prefix.empty()) throw Error(where + ": zip holds more than one data.pkl");
      prefix = name.substr(0, slash);
    }
  }
  if (prefix.empty()) throw Error(where + ": zip archive has no '<name>/data.pkl': not a torch checkpoint");
  const ZipEntry* pkl = zip.find(prefix + "/data.pkl");

  // Persistent id: ('storage', storage_type, key, location, numel)
  auto load_storage = [&](const Ref& pid) {
    Ref s = std::make_shared<pickle::Object>();
    s->kind = Kind::Storage;
    s->storage_dtype = pickle::storage_dtype(*pid_field(pid, 1, Kind::Global, where), where);
    s->storage_key = pid_field(pid, 2, Kind::Str, where)->s;
    s->storage_numel = pid_field(pid, 4, Kind::Int, where)->i;
    return s;
  };
  const pickle::Result loaded = pickle::load(pkl->data, pkl->size, load_storage, where + " (data.pkl)");
  const Ref& root = loaded.value;
  return collect(root, file, [&](const pickle::Object& s) {
    const ZipEntry* e = zip.find(prefix + "/data/" + s.storage_key);
    if (!e) throw Error(where + ": corrupt checkpoint: storage " + quote_name(s.storage_key) + " is missing from the archive");
    return StorageBytes{e->data, e->size};
  });
}

// Legacy: pickle(magic) pickle(protocol) pickle(sys_info) pickle(state dict) pickle(storage keys),
// then for each key in that order: int64 element count + raw bytes.
std::map<std::string, TensorData> read_legacy(const std::shared_ptr<const MappedFile>& file) {
  const std::string where = file->path().string();
  const uint8_t* p = file->data();
  uint64_t pos = 0, size = file->size();
  std::vector<pickle::Result> loaded;  // each pickle's objects live until the tensors are collected
  auto next = [&](const pickle::PersistentLoad& pl) {
    loaded.push_back(pickle::load(p + pos, size - pos, pl, where));
    pos += loaded.back().end;
    return loaded.back().value;
  };
  // The magic number's pickle is checked byte by byte before anything is parsed: a file that is not a
  // checkpoint never reaches the unpickler (and its contents never reach an error message).
  static const uint8_t kMagic[] = {0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9,
                                   0x20, 0x6a, 0xa8, 0x50, 0x19, '.'};  // LONG1 0x1950a86a20f9469cfc6c, STOP
  if (size >= 2 && p[0] == 0x80 && p[1] >= 2 && p[1] <= 5) pos = 2;  // PROTO
  if (pos == 2 && size >= 11 && p[2] == 0x95) pos = 11;                // FRAME (protocol 4+)
  if (size - pos < sizeof kMagic || std::memcmp(p + pos, kMagic, sizeof kMagic) != 0)
    throw Error(where + ": not a torch checkpoint (neither a zip archive nor the legacy format's magic number)");
  pos += sizeof kMagic;
  Ref protocol = next(nullptr);
  if (protocol->kind != Kind::Int || protocol->i != 1001)
    throw Error(where + ": unsupported legacy torch protocol version");
  next(nullptr);  // sys_info: endianness and type sizes
  // Persistent id: ('storage', storage_type, root_key, location, numel, view_metadata)
  auto load_storage = [&](const Ref& pid) {
    Ref s = std::make_shared<pickle::Object>();
    s->kind = Kind::Storage;
    s->storage_dtype = pickle::storage_dtype(*pid_field(pid, 1, Kind::Global, where), where);
    s->storage_key = pid_field(pid, 2, Kind::Str, where)->s;
    s->storage_numel = pid_field(pid, 4, Kind::Int, where)->i;
    if (pid->items.size() > 5 && pid->items[5]->kind == Kind::Tuple) {  // view: (view_key, offset, view_size)
      const auto& v = pid->items[5]->items;
      if (v.size() != 3 || v[1]->kind != Kind::Int || v[2]->kind != Kind::Int)
        throw Error(where + ": corrupt checkpoint: malformed storage view");
      s->storage_view_offset = v[1]->i;
      s->storage_numel = v[2]->i;
    }
    return s;
  };
  Ref root = next(load_storage);
  Ref keys = next(nullptr);
  if (keys->kind != Kind::List) throw Error(where + ": corrupt checkpoint: storage key list missing");
  if (root->kind != Kind::Dict) throw Error(where + ": expected a state dict (name → tensor) at the top level");
  std::map<std::string, uint64_t> element_size;  // storage key → bytes per element, from the tensors using it
  for (const auto& [name, t] : root->dict)
    if (t->kind == Kind::Tensor) element_size[t->storage->storage_key] = dtype_size(t->storage->storage_dtype);
  std::map<std::string, StorageBytes> storages;
  for (const auto& k : keys->items) {
    if (k->kind != Kind::Str) throw Error(where + ": corrupt checkpoint: storage key is not a string");
    int64_t count;
    std::memcpy(&count, file->range(pos, 8, "storage header"), 8);
    pos += 8;
    if (count < 0 || count > (int64_t(1) << 40)) throw Error(where + ": corrupt checkpoint: implausible storage size");
    auto es = element_size.find(k->s);
    uint64_t bytes = static_cast<uint64_t>(count) * (es == element_size.end() ? 1 : es->second);
    storages[k->s] = StorageBytes{file->range(pos, bytes, ("storage " + quote_name(k->s)).c_str()), bytes};
    pos += bytes;
  }
  return collect(root, file, [&](const pickle::Object& s) {
    auto it = storages.find(s.storage_key);
    if (it == storages.end()) throw Error(where + ": corrupt checkpoint: storage " + quote_name(s.storage_key) + " has no data");
    return it->second;
  });
}

}  // namespace

std::map<std::string, TensorData> read_torch_bin(const std::filesystem::path& path) {
  auto file = MappedFile::open(path);
  if (ZipArchive::looks_like_zip(*file)) return read_zip(file);
  return read_legacy(file);
}

}  // namespace hf2onnx::hf
