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
// Live mappings (begin → end and the file's descriptor), so that release_pages only ever touches
// file-backed read-only memory.
struct Mapping {
  const uint8_t* end;
  int fd;
};
std::mutex g_mappings_mutex;
std::map<const uint8_t*, Mapping> g_mappings;

// The mapping holding all of [p, p + n), if any; call with the mutex held.
const std::pair<const uint8_t* const, Mapping>* find_mapping(const void* p, uint64_t n) {
  const auto* begin = static_cast<const uint8_t*>(p);
  auto it = g_mappings.upper_bound(begin);
  if (it == g_mappings.begin()) return nullptr;
  --it;
  if (begin < it->first || n > static_cast<uint64_t>(it->second.end - begin)) return nullptr;
  return &*it;
}
}  // namespace

namespace {
// madvise(advice) on the whole pages of [p, p + n) when the range lies inside a live mapping; `inner` keeps
// to pages entirely inside the range (dropping a page must not drop a neighbour's bytes).
void advise_mapped(const void* p, uint64_t n, int advice, bool inner) {
  const auto* begin = static_cast<const uint8_t*>(p);
  std::lock_guard<std::mutex> lock(g_mappings_mutex);
  if (!find_mapping(p, n)) return;
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t lo = reinterpret_cast<uintptr_t>(begin), hi = reinterpret_cast<uintptr_t>(begin + n);
  const uintptr_t a = inner ? (lo + page - 1) / page * page : lo / page * page;
  const uintptr_t b = inner ? hi / page * page : (hi + page - 1) / page * page;
  if (b > a) madvise(reinterpret_cast<void*>(a), b - a, advice);
}
}  // namespace

void MappedFile::release_pages(const void* p, uint64_t n) { advise_mapped(p, n, MADV_DONTNEED, /*inner=*/true); }

std::optional<MappedFile::FileRange> MappedFile::file_range(const void* p, uint64_t n) {
  std::lock_guard<std::mutex> lock(g_mappings_mutex);
  const auto* m = find_mapping(p, n);
  if (!m) return std::nullopt;
  return FileRange{m->second.fd, static_cast<uint64_t>(static_cast<const uint8_t*>(p) - m->first)};
}

void MappedFile::read(const void* p, uint64_t n, void* dst) {
  const auto range = file_range(p, n);
  if (!range) {
    std::memcpy(dst, p, n);
    return;
  }
  auto* out = static_cast<uint8_t*>(dst);
  for (uint64_t done = 0; done < n;) {
    const ssize_t k = ::pread(range->fd, out + done, n - done, static_cast<off_t>(range->offset + done));
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) {  // the file shrank under its mapping, or an I/O error: the mapping still says what it held
      std::memcpy(out + done, static_cast<const uint8_t*>(p) + done, n - done);
      return;
    }
    done += static_cast<uint64_t>(k);
  }
}

void MappedFile::populate(const void* p, uint64_t n) {
#ifdef MADV_POPULATE_READ
  advise_mapped(p, n, MADV_POPULATE_READ, /*inner=*/false);
#endif
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
    file->fd_ = fd;
    std::lock_guard<std::mutex> lock(g_mappings_mutex);
    g_mappings[file->data_] = Mapping{file->data_ + file->size_, fd};
  } else {
    ::close(fd);
  }
  return file;
}

MappedFile::~MappedFile() {
  if (!data_) return;
  {
    std::lock_guard<std::mutex> lock(g_mappings_mutex);
    g_mappings.erase(data_);
  }
  munmap(const_cast<uint8_t*>(data_), size_);
  ::close(fd_);
}

const uint8_t* MappedFile::range(uint64_t offset, uint64_t length, const char* what) const {
  if (offset > size_ || length > size_ - offset)
    throw Error(path_.string() + ": truncated or corrupt file: " + what + " [" + std::to_string(offset) +
                ", +" + std::to_string(length) + ") lies outside the file (" + std::to_string(size_) +
                " bytes)");
  return data_ + offset;
}

}  // namespace hf2onnx
