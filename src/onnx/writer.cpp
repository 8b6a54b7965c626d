#include "onnx/writer.h"

#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

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

// The output file. Small pieces (protobuf headers) are gathered in a buffer; weights go to the kernel through
// a pipe (vmsplice + splice) where the kernel allows it, write() otherwise. Either way the kernel gets at most
// 64 KB per call: the page cache then takes the new file's pages in small folios. Calls of 1 MB or more made
// it take large folios, and writing the same 4.2 GB took 2-4x the time on the machines measured
// (docs/benchmarks.md, "The 1.1B export, session 8").
class File {
 public:
  explicit File(const std::filesystem::path& path)
      : path_(path), fd_(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) {
    if (fd_ < 0) throw Error(path.string() + ": cannot create: " + std::strerror(errno));
    int p[2];
    if (::pipe2(p, O_CLOEXEC) == 0) {
      pipe_[0] = p[0];
      pipe_[1] = p[1];
      const int size = ::fcntl(pipe_[1], F_GETPIPE_SZ);  // 64 KB unless the system says otherwise
      pipe_size_ = size > 0 ? std::min<uint64_t>(static_cast<uint64_t>(size), kPiece) : 0;
    }
  }
  ~File() {
    for (int fd : {fd_, pipe_[0], pipe_[1]})
      if (fd >= 0) ::close(fd);
  }
  void write(const void* p, uint64_t n) {
    if (n < kSmallWrite) {
      buffer_.append(static_cast<const char*>(p), n);
      if (buffer_.size() >= kBufferSize) flush();
    } else {
      flush();
      if (!splice_all(static_cast<const char*>(p), n)) write_all(static_cast<const char*>(p), n);
    }
    written_ += n;
  }
  void write(const std::string& s) { write(s.data(), s.size()); }
  // Writes [p, p + n), which lies at `from` in a mapped file: the kernel copies it file to file
  // (copy_file_range: no page of it mapped into this process), or it is written as above where the
  // kernel cannot (another file system type, an old kernel).
  void copy(const MappedFile::FileRange& from, const void* p, uint64_t n) {
    flush();
    loff_t in = static_cast<loff_t>(from.offset);
    uint64_t done = 0;
    while (copy_works_ && done < n) {
      const ssize_t k = ::copy_file_range(from.fd, &in, fd_, nullptr, n - done, 0);
      if (k < 0 && errno == EINTR) continue;
      if (k == 0) break;  // the kernel copied nothing (it reports end of file): write the rest from the mapping
      if (k < 0) {
        if (done == 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP)) {
          copy_works_ = false;
          break;
        }
        fail("copy_file_range");
      }
      done += static_cast<uint64_t>(k);
    }
    written_ += done;
    if (done < n) write(static_cast<const char*>(p) + done, n - done);
  }
  void pad_to(uint64_t align) {
    static const char zeros[kExternalAlign] = {};
    write(zeros, (align - written_ % align) % align);
  }
  uint64_t close() {
    flush();
    const int fd = std::exchange(fd_, -1);
    if (::close(fd) != 0) fail("close");
    return written_;
  }
  uint64_t written() const { return written_; }

 private:
  static constexpr uint64_t kSmallWrite = 64 << 10, kBufferSize = 1 << 20;
  static constexpr uint64_t kPiece = 64 << 10;  // the most one call hands the kernel (see the class comment)

  // A call that returned an error (errno says which) or, for write() and splice(), wrote nothing.
  [[noreturn]] void fail(const char* call) const {
    throw Error(path_.string() + ": write failed (" + call + "): " + (errno ? std::strerror(errno) : "nothing written"));
  }
  void flush() {
    write_all(buffer_.data(), buffer_.size());
    buffer_.clear();
  }
  void write_all(const char* p, uint64_t n) {
    while (n) {
      errno = 0;
      const ssize_t k = ::write(fd_, p, std::min(n, kPiece));
      if (k < 0 && errno == EINTR) continue;
      if (k <= 0) fail("write");
      p += k;
      n -= static_cast<uint64_t>(k);
    }
  }
  // Returns false, having written nothing, when the kernel refuses the first vmsplice (then write() it is).
  // The pipe only references the caller's pages; splice copies them into the file before it returns.
  bool splice_all(const char* p, uint64_t n) {
    if (pipe_size_ == 0 || !splice_works_) return false;
    bool first = true;
    while (n) {
      iovec iov{const_cast<char*>(p), std::min(n, pipe_size_)};
      const ssize_t in = ::vmsplice(pipe_[1], &iov, 1, 0);
      if (in < 0 && errno == EINTR) continue;
      if (in <= 0) {
        if (first) return splice_works_ = false;
        fail("vmsplice");
      }
      first = false;
      for (ssize_t left = in; left > 0;) {
        errno = 0;
        const ssize_t out = ::splice(pipe_[0], nullptr, fd_, nullptr, static_cast<size_t>(left), SPLICE_F_MOVE);
        if (out < 0 && errno == EINTR) continue;
        if (out <= 0) fail("splice");
        left -= out;
      }
      p += in;
      n -= static_cast<uint64_t>(in);
    }
    return true;
  }

  std::filesystem::path path_;
  int fd_;
  int pipe_[2] = {-1, -1};
  uint64_t pipe_size_ = 0;
  bool splice_works_ = true, copy_works_ = true;
  std::string buffer_;
  uint64_t written_ = 0;
};

// Computes initializers' bytes on a thread of its own while the writer writes (transposes and conversions
// overlap the kernel's copy into the file). The writer keeps three busy, each making one of the next weights,
// and gives a producer its next weight only once the last one it made is written: the thread-local scratch
// buffers a weight was produced in stay untouched until then. Producers never share a thread's buffers.
class Producer {
 public:
  Producer() : thread_([this] { run(); }) {}
  ~Producer() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }
  void start(const std::function<TensorBytes()>* job) {
    std::lock_guard<std::mutex> lock(mutex_);
    job_ = job;
    wake_.notify_all();
  }
  TensorBytes wait() {
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [&] { return result_.has_value() || error_; });
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
    TensorBytes out = std::move(*result_);
    result_.reset();
    return out;
  }

 private:
  void run() {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      wake_.wait(lock, [&] { return stop_ || job_; });
      if (stop_) return;
      const auto* job = std::exchange(job_, nullptr);
      lock.unlock();
      std::optional<TensorBytes> out;
      std::exception_ptr error;
      try {
        out = (*job)();
      } catch (...) {
        error = std::current_exception();
      }
      lock.lock();
      result_ = std::move(out);
      error_ = error;
      done_.notify_all();
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_, done_;
  const std::function<TensorBytes()>* job_ = nullptr;
  std::optional<TensorBytes> result_;
  std::exception_ptr error_;
  bool stop_ = false;
  std::thread thread_;  // last: starts once the members above exist
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
  constexpr size_t kProducers = 3;  // three in flight: 13% faster than two on the 1.1B Llama (docs/benchmarks.md)
  Producer producers[kProducers];
  for (size_t i = 0; i < std::min<size_t>(kProducers, initializers.size()); ++i) producers[i].start(&initializers[i].bytes);
  for (size_t i = 0; i < initializers.size(); ++i) {
    const Piece& p = pieces[i];
    TensorBytes bytes = producers[i % kProducers].wait();
    if (bytes.size != initializers[i].nbytes())
      throw Error("initializer '" + initializers[i].name + "' produced " + std::to_string(bytes.size) +
                  " bytes, expected " + std::to_string(initializers[i].nbytes()));
    std::string field = key(5);
    put_varint(field, p.header.size() + p.payload);
    out.write(field);
    out.write(p.header);
    File& to = p.external ? *data : out;
    if (p.external) data->pad_to(kExternalAlign);
    if (auto from = MappedFile::file_range(bytes.data, bytes.size))
      to.copy(*from, bytes.data, bytes.size);
    else
      to.write(bytes.data, bytes.size);
    progress.advance(bytes.size);
    MappedFile::release_pages(bytes.data, bytes.size);  // weights read from a checkpoint map: done with them
    if (i + kProducers < initializers.size())  // its buffers are free now
      producers[i % kProducers].start(&initializers[i + kProducers].bytes);
  }
  std::vector<WrittenFile> files{{path, out.close()}};
  if (data) files.push_back({path.parent_path() / data_name, data->close()});
  return files;
}

}  // namespace hf2onnx
