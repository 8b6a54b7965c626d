// Minimal, bounds-checked reader for the uncompressed zip archives torch.save writes (zip64 included).
#pragma once
#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "common/mapped_file.h"

namespace hf2onnx::hf {

struct ZipEntry {
  const uint8_t* data = nullptr;
  uint64_t size = 0;
};

class ZipArchive {
 public:
  explicit ZipArchive(std::shared_ptr<const MappedFile> file);
  static bool looks_like_zip(const MappedFile& file);

  const std::map<std::string, ZipEntry>& entries() const { return entries_; }
  const ZipEntry* find(const std::string& name) const;
  const std::shared_ptr<const MappedFile>& file() const { return file_; }

 private:
  std::shared_ptr<const MappedFile> file_;
  std::map<std::string, ZipEntry> entries_;
};

}  // namespace hf2onnx::hf
