#include "onnx/writer.h"

#include <cstdio>
#include <cstring>

#include "common/log.h"
#include "common/mapped_file.h"
#include "hf2onnx/error.h"

namespace hf2onnx {
namespace {

constexpr uint64_t kProtobufLimit = (1ull << 31) - 1;
constexpr uint64_t kExternalMinBytes = 1024;  // smaller tensors stay inline, as onnx's own saver does
constexpr uint64_t kExternalAlign = 4096;     // page-aligned so that runtimes can map the data file

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}
uint64_t varint_size(uint64_t v) {
  uint64_t n = 1;
  while (v >= 0x80) { v >>= 7; ++n; }
  return n;
}
std::string key(int field) {  // a length-delimited field's key
  std::string k;
  put_varint(k, (static_cast<uint64_t>(field) << 3) | 2);
  return k;
}

class File {
 public:
  explicit File(const std::filesystem::path& path) : path_(path), f_(std::fopen(path.c_str(), "wb")) {
    if (!f_) throw Error(path.string() + ": cannot create: " + std::strerror(errno));
    std::setvbuf(f_, nullptr, _IOFBF, 1 << 20);
  }
  ~File() {
    if (f_) std::fclose(f_);
  }
  void write(const void* p, uint64_t n) {
    if (n && std::fwrite(p, 1, n, f_) != n) throw Error(path_.string() + ": write failed: " + std::strerror(errno));
    written_ += n;
  }
  void write(const std::string& s) { write(s.data(), s.size()); }
  void pad_to(uint64_t align) {
    static const char zeros[kExternalAlign] = {};
    write(zeros, (align - written_ % align) % align);
  }
  uint64_t close() {
    if (std::fclose(f_) != 0) {
      f_ = nullptr;
      throw Error(path_.string() + ": write failed: " + std::strerror(errno));
    }
    f_ = nullptr;
    return written_;
  }
  uint64_t written() const { return written_; }

 private:
  std::filesystem::path path_;
  FILE* f_;
  uint64_t written_ = 0;
};

}  // namespace

uint64_t onnx_type_size(int32_t t) {
  switch (t) {
    case onnx::TensorProto::FLOAT: case onnx::TensorProto::INT32: case onnx::TensorProto::UINT32: return 4;
    case onnx::TensorProto::DOUBLE: case onnx::TensorProto::INT64: case onnx::TensorProto::UINT64: return 8;
    case onnx::TensorProto::FLOAT16: case onnx::TensorProto::BFLOAT16: case onnx::TensorProto::INT16:
    case onnx::TensorProto::UINT16: return 2;
    case onnx::TensorProto::INT8: case onnx::TensorProto::UINT8: case onnx::TensorProto::BOOL: return 1;
  }
  throw Error("unsupported initializer data type " + std::to_string(t));
}

uint64_t Initializer::nbytes() const {
  uint64_t n = onnx_type_size(data_type);
  for (int64_t d : dims) n *= static_cast<uint64_t>(d);
  return n;
}

std::vector<WrittenFile> write_onnx(const onnx::ModelProto& model, const std::vector<Initializer>& initializers,
                                    const std::filesystem::path& path, ExternalData external) {
  onnx::ModelProto head = model;
  onnx::GraphProto graph = head.graph();
  head.clear_graph();
  const std::string head_bytes = head.SerializeAsString();
  const std::string graph_bytes = graph.SerializeAsString();

  uint64_t total = head_bytes.size() + graph_bytes.size();
  for (const auto& init : initializers) total += init.nbytes() + init.name.size() + 64;
  const bool use_external =
      external == ExternalData::Always || (external == ExternalData::Auto && total > kProtobufLimit);
  const std::string data_name = path.filename().string() + "_data";

  // Serialise each initializer's header (everything but raw_data); its payload is streamed after it.
  struct Piece {
    std::string header;
    uint64_t payload = 0;  // inline raw_data bytes
    bool external = false;
  };
  std::vector<Piece> pieces(initializers.size());
  uint64_t data_offset = 0;
  uint64_t graph_len = graph_bytes.size();
  for (size_t i = 0; i < initializers.size(); ++i) {
    const auto& init = initializers[i];
    onnx::TensorProto t;
    t.set_name(init.name);
    t.set_data_type(init.data_type);
    for (int64_t d : init.dims) t.add_dims(d);
    const uint64_t n = init.nbytes();
    Piece& p = pieces[i];
    if (use_external && n >= kExternalMinBytes) {
      data_offset = (data_offset + kExternalAlign - 1) / kExternalAlign * kExternalAlign;
      t.set_data_location(onnx::TensorProto::EXTERNAL);
      auto* loc = t.add_external_data();
      loc->set_key("location");
      loc->set_value(data_name);
      auto* off = t.add_external_data();
      off->set_key("offset");
      off->set_value(std::to_string(data_offset));
      auto* len = t.add_external_data();
      len->set_key("length");
      len->set_value(std::to_string(n));
      data_offset += n;
      p.external = true;
      p.header = t.SerializeAsString();
    } else {
      p.header = t.SerializeAsString();
      p.payload = n;
      p.header += key(9);  // raw_data
      put_varint(p.header, n);
    }
    const uint64_t len = p.header.size() + p.payload;
    graph_len += key(5).size() + varint_size(len) + len;  // GraphProto.initializer = 5
  }
  if (!use_external && graph_len + head_bytes.size() > kProtobufLimit)
    throw Error(path.string() + ": model exceeds the 2 GB protobuf limit; external data is required");

  uint64_t weight_bytes = 0;
  for (const auto& init : initializers) weight_bytes += init.nbytes();
  Progress progress("writing " + path.filename().string(), weight_bytes);
  File out(path);
  std::unique_ptr<File> data;
  if (use_external) data = std::make_unique<File>(path.parent_path() / data_name);
  out.write(head_bytes);
  out.write(key(7));  // ModelProto.graph = 7
  std::string len;
  put_varint(len, graph_len);
  out.write(len);
  out.write(graph_bytes);
  for (size_t i = 0; i < initializers.size(); ++i) {
    const Piece& p = pieces[i];
    TensorBytes bytes = initializers[i].bytes();
    if (bytes.size != initializers[i].nbytes())
      throw Error("initializer '" + initializers[i].name + "' produced " + std::to_string(bytes.size) +
                  " bytes, expected " + std::to_string(initializers[i].nbytes()));
    std::string field = key(5);
    put_varint(field, p.header.size() + p.payload);
    out.write(field);
    out.write(p.header);
    if (p.external) {
      data->pad_to(kExternalAlign);
      data->write(bytes.data, bytes.size);
    } else {
      out.write(bytes.data, bytes.size);
    }
    progress.advance(bytes.size);
    MappedFile::release_pages(bytes.data, bytes.size);  // weights read from a checkpoint map: done with them
  }
  std::vector<WrittenFile> files{{path, out.close()}};
  if (data) files.push_back({path.parent_path() / data_name, data->close()});
  return files;
}

}  // namespace hf2onnx
