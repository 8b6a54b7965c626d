#include "onnx/reader.h"

#include <algorithm>

#include <cstring>
#include <map>
#include <optional>

#include "common/mapped_file.h"
#include "hf2onnx/error.h"

namespace hf2onnx {
namespace fs = std::filesystem;

namespace {

// One protobuf field: its number, wire type, and the bytes it spans (key included) and its payload.
struct Field {
  uint32_t number;
  uint32_t wire;
  const uint8_t* begin;  // key
  const uint8_t* end;
  const uint8_t* payload;  // for length-delimited fields
  uint64_t payload_size;
};

class WireReader {
 public:
  WireReader(const uint8_t* p, uint64_t n, const std::string& where) : p_(p), end_(p + n), where_(where) {}
  bool done() const { return p_ >= end_; }
  Field next() {
    Field f{};
    f.begin = p_;
    uint64_t key = varint();
    f.number = static_cast<uint32_t>(key >> 3);
    f.wire = static_cast<uint32_t>(key & 7);
    switch (f.wire) {
      case 0: varint(); break;
      case 1: skip(8); break;
      case 5: skip(4); break;
      case 2:
        f.payload_size = varint();
        f.payload = p_;
        skip(f.payload_size);
        break;
      default: fail("unsupported wire type " + std::to_string(f.wire));
    }
    f.end = p_;
    return f;
  }

 private:
  [[noreturn]] void fail(const std::string& why) { throw Error(where_ + ": not a valid ONNX model (" + why + ")"); }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p_ >= end_) fail("truncated");
      uint8_t b = *p_++;
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    fail("bad varint");
  }
  void skip(uint64_t n) {
    if (n > static_cast<uint64_t>(end_ - p_)) fail("truncated");
    p_ += n;
  }
  const uint8_t* p_;
  const uint8_t* end_;
  const std::string& where_;
};

void append(std::string& out, const Field& f) { out.append(reinterpret_cast<const char*>(f.begin), f.end - f.begin); }

// Bytes per element of the types whose bytes the reader handles; 0 for the others (strings, ...).
uint64_t type_size_or_0(int32_t t) {
  switch (t) {
    case onnx::TensorProto::FLOAT: case onnx::TensorProto::INT32: case onnx::TensorProto::UINT32:
    case onnx::TensorProto::DOUBLE: case onnx::TensorProto::INT64: case onnx::TensorProto::UINT64:
    case onnx::TensorProto::FLOAT16: case onnx::TensorProto::BFLOAT16: case onnx::TensorProto::INT16:
    case onnx::TensorProto::UINT16: case onnx::TensorProto::INT8: case onnx::TensorProto::UINT8:
    case onnx::TensorProto::BOOL:
      return onnx_type_size(t);
  }
  return 0;
}

// How many values the typed field of the tensor's data type holds (-1: no typed field handled here).
int64_t typed_values(const onnx::TensorProto& t) {
  switch (t.data_type()) {
    case onnx::TensorProto::FLOAT: return t.float_data_size();
    case onnx::TensorProto::DOUBLE: return t.double_data_size();
    case onnx::TensorProto::INT64: return t.int64_data_size();
    case onnx::TensorProto::INT32: case onnx::TensorProto::INT8: case onnx::TensorProto::UINT8:
    case onnx::TensorProto::BOOL: case onnx::TensorProto::INT16: case onnx::TensorProto::UINT16:
    case onnx::TensorProto::FLOAT16: case onnx::TensorProto::BFLOAT16:
      return t.int32_data_size();
  }
  return -1;
}

// A decimal number from external_data (offset, length): digits only, no overflow.
std::optional<uint64_t> parse_u64(const std::string& s) {
  if (s.empty() || s.size() > 20) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9' || __builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, uint64_t(c - '0'), &v))
      return std::nullopt;
  }
  return v;
}

}  // namespace

int64_t LazyTensor::numel() const {
  int64_t n = 1;
  for (auto d : header.dims()) n *= d;
  return n;
}

TensorBytes LazyTensor::bytes() const {
  if (produce) return produce();
  if (data || header.data_location() == onnx::TensorProto::EXTERNAL) return TensorBytes{data, size, keep};
  // Typed fields: convert to the raw layout.
  // The count is checked before allocating: dims are the file's claim, the values are what it holds
  // (read_onnx_lazy checks it too; this covers tensors built in memory).
  const uint64_t n = static_cast<uint64_t>(numel());
  const int64_t have = typed_values(header);
  if (have < 0) throw Error("initializer " + quote_name(name()) + " has an unsupported data type");
  if (static_cast<uint64_t>(have) != n)
    throw Error("initializer " + quote_name(name()) + " holds " + std::to_string(have) + " values for " + std::to_string(n) +
                " elements");
  auto buf = std::make_shared<std::vector<uint8_t>>(n * onnx_type_size(header.data_type()));
  auto put = [&](auto value, size_t i) { std::memcpy(buf->data() + i * sizeof(value), &value, sizeof(value)); };
  switch (header.data_type()) {
    case onnx::TensorProto::FLOAT:
      for (uint64_t i = 0; i < n; ++i) put(header.float_data(static_cast<int>(i)), i);
      break;
    case onnx::TensorProto::DOUBLE:
      for (uint64_t i = 0; i < n; ++i) put(header.double_data(static_cast<int>(i)), i);
      break;
    case onnx::TensorProto::INT64:
      for (uint64_t i = 0; i < n; ++i) put(header.int64_data(static_cast<int>(i)), i);
      break;
    case onnx::TensorProto::INT32:
      for (uint64_t i = 0; i < n; ++i) put(header.int32_data(static_cast<int>(i)), i);
      break;
    case onnx::TensorProto::INT8: case onnx::TensorProto::UINT8: case onnx::TensorProto::BOOL:
      for (uint64_t i = 0; i < n; ++i) put(static_cast<uint8_t>(header.int32_data(static_cast<int>(i))), i);
      break;
    case onnx::TensorProto::INT16: case onnx::TensorProto::UINT16: case onnx::TensorProto::FLOAT16:
    case onnx::TensorProto::BFLOAT16:
      for (uint64_t i = 0; i < n; ++i) put(static_cast<uint16_t>(header.int32_data(static_cast<int>(i))), i);
      break;
    default:
      throw Error("initializer " + quote_name(name()) + " has an unsupported data type");
  }
  return TensorBytes{buf->data(), buf->size(), buf};
}

std::vector<float> LazyTensor::floats() const {
  if (header.data_type() != onnx::TensorProto::FLOAT) throw Error("initializer " + quote_name(name()) + " is not float");
  TensorBytes b = bytes();
  std::vector<float> out(b.size / 4);
  if (b.size) std::memcpy(out.data(), b.data, b.size);  // (an empty tensor may have no data pointer at all)
  return out;
}

Initializer LazyTensor::as_initializer() const {
  Initializer init;
  init.name = name();
  init.data_type = header.data_type();
  init.dims = dims();
  LazyTensor copy = *this;
  init.bytes = [copy] { return copy.bytes(); };
  return init;
}

LazyTensor LazyTensor::owned(const std::string& name, int32_t data_type, std::vector<int64_t> dims,
                             std::shared_ptr<std::vector<uint8_t>> bytes) {
  LazyTensor t;
  t.header.set_name(name);
  t.header.set_data_type(data_type);
  for (auto d : dims) t.header.add_dims(d);
  t.data = bytes->data();
  t.size = bytes->size();
  t.keep = std::move(bytes);
  return t;
}

LazyModel read_onnx_lazy(const fs::path& path) {
  const std::string where = path.string();
  auto file = MappedFile::open(path);
  std::map<std::string, std::shared_ptr<const MappedFile>> external_files;
  std::string model_bytes, graph_bytes;
  LazyModel out;

  WireReader model(file->data(), file->size(), where);
  while (!model.done()) {
    Field f = model.next();
    if (f.number != 7 || f.wire != 2) {  // ModelProto.graph = 7
      append(model_bytes, f);
      continue;
    }
    WireReader graph(f.payload, f.payload_size, where);
    while (!graph.done()) {
      Field g = graph.next();
      if (g.number != 5 || g.wire != 2) {  // GraphProto.initializer = 5
        append(graph_bytes, g);
        continue;
      }
      LazyTensor t;
      std::string header;
      WireReader tensor(g.payload, g.payload_size, where);
      while (!tensor.done()) {
        Field tf = tensor.next();
        if (tf.number == 9 && tf.wire == 2) {  // TensorProto.raw_data = 9
          t.data = tf.payload;
          t.size = tf.payload_size;
          t.keep = file;
        } else {
          append(header, tf);
        }
      }
      if (!t.header.ParseFromString(header)) throw Error(where + ": not a valid ONNX model (bad initializer)");
      // Dims are a claim of the file: checked (non-negative, size in bytes without overflow) before
      // anything is sized from them, and against the bytes or values actually present.
      auto bad = [&](const std::string& why) { return Error(where + ": initializer " + quote_name(t.name()) + " " + why); };
      const uint64_t es = type_size_or_0(t.header.data_type());
      uint64_t nbytes = es ? es : 1;
      bool empty = false;
      for (int64_t d : t.header.dims()) {
        if (d < 0) throw bad("has a negative dimension " + std::to_string(d));
        if (__builtin_mul_overflow(nbytes, static_cast<uint64_t>(d ? d : 1), &nbytes) || nbytes > uint64_t(INT64_MAX))
          throw bad("has a shape whose size overflows");
        empty = empty || d == 0;
      }
      if (empty) nbytes = 0;
      if (!t.data && t.header.data_location() != onnx::TensorProto::EXTERNAL && es) {
        const int64_t have = typed_values(t.header);
        if (have >= 0 && static_cast<uint64_t>(have) != nbytes / es)
          throw bad("holds " + std::to_string(have) + " values for " + std::to_string(nbytes / es) + " elements");
      }
      if (t.header.data_location() == onnx::TensorProto::EXTERNAL) {
        std::string location;
        uint64_t offset = 0, length = 0;
        bool has_length = false;
        for (const auto& kv : t.header.external_data()) {
          if (kv.key() == "location") location = kv.value();
          if (kv.key() != "offset" && kv.key() != "length") continue;
          auto v = parse_u64(kv.value());
          if (!v) throw bad("has an invalid external data " + kv.key() + " (not a non-negative integer)");
          if (kv.key() == "offset") offset = *v;
          else { length = *v; has_length = true; }
        }
        fs::path data_path = fs::path(location).lexically_normal();
        if (location.empty() || data_path.is_absolute() || *data_path.begin() == "..")
          throw Error(where + ": initializer " + quote_name(t.name()) + " has an invalid external data location " + quote_name(location));
        auto& ext = external_files[location];
        if (!ext) ext = MappedFile::open(path.parent_path() / data_path);
        if (!es) throw bad("has external data of an unsupported data type " + std::to_string(t.header.data_type()));
        if (!has_length) length = nbytes;
        t.data = ext->range(offset, length, ("external data of " + quote_name(t.name())).c_str());
        t.size = length;
        t.keep = ext;
        t.header.clear_external_data();
        t.header.clear_data_location();
      }
      if (t.data && (!es || t.size != nbytes))
        throw bad(es ? "has " + std::to_string(t.size) + " bytes for its shape (" + std::to_string(nbytes) + " needed)"
                     : "has raw data of an unsupported data type " + std::to_string(t.header.data_type()));
      out.initializers.push_back(std::move(t));
    }
  }
  if (!out.model.ParseFromString(model_bytes) || !out.model.mutable_graph()->ParseFromString(graph_bytes))
    throw Error(where + ": not a valid ONNX model (protobuf parse failed)");
  if (out.model.ir_version() == 0 || out.model.opset_import_size() == 0)
    throw Error(where + ": not an ONNX model (no IR version or opset)");
  return out;
}

std::vector<std::filesystem::path> export_onnx_files(const std::filesystem::path& dir,
                                                     const std::function<bool(const std::string&)>& keep) {
  std::vector<std::filesystem::path> files;
  for (const auto& d : {dir / "onnx", dir}) {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(d, ec))
      if (e.is_regular_file() && e.path().extension() == ".onnx" && keep(e.path().filename().string()))
        files.push_back(e.path());
    if (!files.empty()) break;
  }
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace hf2onnx
