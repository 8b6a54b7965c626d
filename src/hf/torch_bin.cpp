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

// Checks a tensor view against its storage and returns it as TensorData.
TensorData make_tensor(const std::string& name, const pickle::Object& t, const StorageBytes& bytes,
                       const std::shared_ptr<const MappedFile>& file) {
  const std::string where = file->path().string();
  auto bad = [&](const std::string& why) { return Error(where + ": corrupt checkpoint: tensor '" + name + "': " + why); };
  const pickle::Object& s = *t.storage;
  const uint64_t es = dtype_size(s.storage_dtype);
  if (s.storage_numel < 0 || static_cast<uint64_t>(s.storage_numel) > bytes.size / es)
    throw bad("storage of " + std::to_string(s.storage_numel) + " elements is larger than its data (" +
              std::to_string(bytes.size) + " bytes; truncated?)");
  int64_t numel = 1, last = 0;
  for (size_t d = 0; d < t.shape.size(); ++d) {
    if (t.shape[d] < 0 || t.strides[d] < 0) throw bad("negative size or stride");
    if (t.shape[d] > (int64_t(1) << 40) || t.strides[d] > (int64_t(1) << 40)) throw bad("implausible size or stride");
    numel *= t.shape[d];
    last += (t.shape[d] - 1) * t.strides[d];
  }
  int64_t begin = s.storage_view_offset + t.offset;
  if (t.offset < 0 || (numel > 0 && begin + last >= s.storage_view_offset + s.storage_numel))
    throw bad("view (offset " + std::to_string(t.offset) + ", size " + shape_str(t.shape) + ", stride " +
              shape_str(t.strides) + ") reaches outside its storage of " + std::to_string(s.storage_numel) +
              " elements");
  TensorData out;
  out.dtype = s.storage_dtype;
  out.shape = t.shape;
  out.strides = t.strides;
  out.data = bytes.data + begin * es;
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
    if (v->kind != Kind::Tensor) throw Error(where + ": state dict entry '" + k->s + "' is not a tensor");
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
    if (!e) throw Error(where + ": corrupt checkpoint: storage '" + s.storage_key + "' is missing from the archive");
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
  Ref magic = next(nullptr);
  static const uint8_t kMagic[] = {0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};  // 0x1950a86a20f9469cfc6c
  if (magic->kind != Kind::BigInt || magic->s.size() != sizeof kMagic ||
      std::memcmp(magic->s.data(), kMagic, sizeof kMagic) != 0)
    throw Error(where + ": not a torch checkpoint (neither a zip archive nor the legacy format's magic number)");
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
    storages[k->s] = StorageBytes{file->range(pos, bytes, ("storage '" + k->s + "'").c_str()), bytes};
    pos += bytes;
  }
  return collect(root, file, [&](const pickle::Object& s) {
    auto it = storages.find(s.storage_key);
    if (it == storages.end()) throw Error(where + ": corrupt checkpoint: storage '" + s.storage_key + "' has no data");
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
