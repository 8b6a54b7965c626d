#include "common/mapped_file.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <mutex>

#include "hf2onnx/error.h"

namespace hf2onnx {

namespace {
// Live mappings (begin → end), so that release_pages only ever touches file-backed read-only memory.
std::mutex g_mappings_mutex;
std::map<const uint8_t*, const uint8_t*> g_mappings;
}  // namespace

void MappedFile::release_pages(const void* p, uint64_t n) {
  const auto* begin = static_cast<const uint8_t*>(p);
  std::lock_guard<std::mutex> lock(g_mappings_mutex);
  auto it = g_mappings.upper_bound(begin);
  if (it == g_mappings.begin()) return;
  --it;
  if (begin < it->first || begin + n > it->second) return;
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  uintptr_t a = (reinterpret_cast<uintptr_t>(begin) + page - 1) / page * page;
  uintptr_t b = reinterpret_cast<uintptr_t>(begin + n) / page * page;
  if (b > a) madvise(reinterpret_cast<void*>(a), b - a, MADV_DONTNEED);
}

std::shared_ptr<const MappedFile> MappedFile::open(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(path.string() + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(path.string() + ": not a regular file");
  }
  std::shared_ptr<MappedFile> file(new MappedFile());
  file->path_ = path;
  file->size_ = static_cast<uint64_t>(st.st_size);
  if (file->size_ > 0) {
    void* p = mmap(nullptr, file->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      ::close(fd);
      throw Error(path.string() + ": mmap failed: " + std::strerror(errno));
    }
    file->data_ = static_cast<const uint8_t*>(p);
    std::lock_guard<std::mutex> lock(g_mappings_mutex);
    g_mappings[file->data_] = file->data_ + file->size_;
  }
  ::close(fd);
  return file;
}

MappedFile::~MappedFile() {
  if (!data_) return;
  {
    std::lock_guard<std::mutex> lock(g_mappings_mutex);
    g_mappings.erase(data_);
  }
  munmap(const_cast<uint8_t*>(data_), size_);
}

const uint8_t* MappedFile::range(uint64_t offset, uint64_t length, const char* what) const {
  if (offset > size_ || length > size_ - offset)
    throw Error(path_.string() + ": truncated or corrupt file: " + what + " [" + std::to_string(offset) +
                ", +" + std::to_string(length) + ") lies outside the file (" + std::to_string(size_) +
                " bytes)");
  return data_ + offset;
}

}  // namespace hf2onnx
