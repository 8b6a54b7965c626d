#include "hf/zip_reader.h"

#include <cstring>

#include "hf2onnx/error.h"

namespace hf2onnx::hf {
namespace {

uint16_t u16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
uint32_t u32(const uint8_t* p) { return u16(p) | (static_cast<uint32_t>(u16(p + 2)) << 16); }
uint64_t u64(const uint8_t* p) { return u32(p) | (static_cast<uint64_t>(u32(p + 4)) << 32); }

constexpr uint32_t kLocalSig = 0x04034b50, kCentralSig = 0x02014b50, kEndSig = 0x06054b50,
                   kZip64EndSig = 0x06064b50, kZip64LocatorSig = 0x07064b50;

}  // namespace

bool ZipArchive::looks_like_zip(const MappedFile& file) {
  return file.size() >= 4 && u32(file.data()) == kLocalSig;
}

ZipArchive::ZipArchive(std::shared_ptr<const MappedFile> file) : file_(std::move(file)) {
  const MappedFile& f = *file_;
  auto corrupt = [&](const std::string& why) { return Error(f.path().string() + ": corrupt zip archive: " + why); };
  if (f.size() < 22) throw corrupt("too small for an end-of-central-directory record (truncated?)");

  // Find the end-of-central-directory record (the comment can be up to 64 KB).
  uint64_t eocd = UINT64_MAX;
  uint64_t lowest = f.size() >= 22 + 65535 ? f.size() - 22 - 65535 : 0;
  for (uint64_t pos = f.size() - 22 + 1; pos-- > lowest;) {
    if (u32(f.data() + pos) == kEndSig) { eocd = pos; break; }
  }
  if (eocd == UINT64_MAX) throw corrupt("no end-of-central-directory record (truncated?)");
  const uint8_t* e = f.data() + eocd;
  uint64_t count = u16(e + 10), cd_size = u32(e + 12), cd_offset = u32(e + 16);
  if (count == 0xffff || cd_size == 0xffffffffu || cd_offset == 0xffffffffu) {
    if (eocd < 20) throw corrupt("zip64 locator missing");
    const uint8_t* loc = f.range(eocd - 20, 20, "zip64 locator");
    if (u32(loc) != kZip64LocatorSig) throw corrupt("zip64 locator missing");
    const uint8_t* z = f.range(u64(loc + 8), 56, "zip64 end record");
    if (u32(z) != kZip64EndSig) throw corrupt("bad zip64 end record signature");
    count = u64(z + 32);
    cd_size = u64(z + 40);
    cd_offset = u64(z + 48);
  }
  const uint8_t* cd = f.range(cd_offset, cd_size, "central directory");
  uint64_t pos = 0;
  for (uint64_t i = 0; i < count; ++i) {
    if (pos + 46 > cd_size) throw corrupt("central directory is truncated");
    const uint8_t* h = cd + pos;
    if (u32(h) != kCentralSig) throw corrupt("bad central directory signature");
    uint16_t method = u16(h + 10);
    uint64_t comp_size = u32(h + 20), size = u32(h + 24), local = u32(h + 42);
    uint16_t name_len = u16(h + 28), extra_len = u16(h + 30), comment_len = u16(h + 32);
    if (pos + 46 + name_len + extra_len + comment_len > cd_size) throw corrupt("central directory is truncated");
    std::string name(reinterpret_cast<const char*>(h + 46), name_len);
    // zip64 extended information: only the fields that are 0xffffffff in the header are present.
    const uint8_t* x = h + 46 + name_len;
    for (uint32_t xp = 0; xp + 4 <= extra_len;) {
      uint16_t id = u16(x + xp), len = u16(x + xp + 2);
      if (xp + 4 + len > extra_len) throw corrupt("extra field of " + quote_name(name) + " is truncated");
      if (id == 0x0001) {
        const uint8_t* v = x + xp + 4;
        uint32_t used = 0;
        auto next = [&]() {
          if (used + 8 > len) throw corrupt("zip64 field of " + quote_name(name) + " is truncated");
          uint64_t r = u64(v + used);
          used += 8;
          return r;
        };
        if (size == 0xffffffffu) size = next();
        if (comp_size == 0xffffffffu) comp_size = next();
        if (local == 0xffffffffu) local = next();
      }
      xp += 4 + len;
    }
    pos += 46 + name_len + extra_len + comment_len;
    if (method != 0)
      throw corrupt("entry " + quote_name(name) + " is compressed (method " + std::to_string(method) +
                    "); torch checkpoints store entries uncompressed");
    if (comp_size != size) throw corrupt("entry " + quote_name(name) + " has inconsistent sizes");
    const uint8_t* lh = f.range(local, 30, "local file header");
    if (u32(lh) != kLocalSig) throw corrupt("bad local header signature for " + quote_name(name));
    uint64_t data_offset = local + 30 + u16(lh + 26) + u16(lh + 28);
    ZipEntry entry;
    entry.data = f.range(data_offset, size, ("data of zip entry " + quote_name(name)).c_str());
    entry.size = size;
    entries_[name] = entry;
  }
}

const ZipEntry* ZipArchive::find(const std::string& name) const {
  auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : &it->second;
}

}  // namespace hf2onnx::hf
