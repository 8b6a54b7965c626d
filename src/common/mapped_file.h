// A read-only memory-mapped file with bounds-checked access. Weights are used in place from the map.
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

namespace hf2onnx {

class MappedFile {
 public:
  static std::shared_ptr<const MappedFile> open(const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }
  const std::filesystem::path& path() const { return path_; }
  // Drops the pages of [p, p + n) from this process's resident set when they lie inside a live
  // mapping (they are re-read from the page cache if touched again). No-op for other memory.
  static void release_pages(const void* p, uint64_t n);
  // Maps the pages of [p, p + n) in one call when they lie inside a live mapping (cheaper than a page fault
  // per 64 KB when a weight is about to be read through once). No-op for other memory or older kernels.
  static void populate(const void* p, uint64_t n);
  // Where [p, p + n) lies in a live mapping's file (its descriptor stays open as long as the mapping).
  struct FileRange {
    int fd;
    uint64_t offset;
  };
  static std::optional<FileRange> file_range(const void* p, uint64_t n);
  // Copies [p, p + n) to dst: read from the file when the range is mapped (no page faults, nothing left
  // resident), memcpy otherwise.
  static void read(const void* p, uint64_t n, void* dst);
  // Pointer to [offset, offset + length); throws naming the file when the range is outside it.
  const uint8_t* range(uint64_t offset, uint64_t length, const char* what) const;

 private:
  MappedFile() = default;
  std::filesystem::path path_;
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
  int fd_ = -1;
};

}  // namespace hf2onnx
