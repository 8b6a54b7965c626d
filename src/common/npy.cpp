#include "common/npy.h"

#include <cstring>
#include <fstream>
#include <iterator>
#include <regex>
#include <sstream>

#include "hf2onnx/error.h"

namespace hf2onnx {

int64_t NpyArray::numel() const {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

namespace {
uint64_t item_size(const std::string& dtype) {
  if (dtype == "<f4" || dtype == "<i4") return 4;
  if (dtype == "<i8" || dtype == "<f8") return 8;
  if (dtype == "|b1" || dtype == "|u1" || dtype == "|i1") return 1;
  return 0;
}
}  // namespace

NpyArray read_npy(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path.string() + ": cannot open");
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string bad = path.string() + ": not a .npy file";
  if (all.size() < 10 || all.compare(0, 6, "\x93NUMPY") != 0) throw Error(bad);
  size_t hlen, hstart;
  if (all[6] == 1) {
    hlen = static_cast<uint8_t>(all[8]) | (static_cast<uint8_t>(all[9]) << 8);
    hstart = 10;
  } else {
    if (all.size() < 12) throw Error(bad);
    uint32_t v;
    std::memcpy(&v, all.data() + 8, 4);
    hlen = v;
    hstart = 12;
  }
  if (hlen > all.size() - hstart) throw Error(bad);
  const std::string header = all.substr(hstart, hlen);
  std::smatch m;
  NpyArray a;
  if (!std::regex_search(header, m, std::regex("'descr':\\s*'([^']+)'"))) throw Error(bad);
  a.dtype = m[1];
  if (item_size(a.dtype) == 0) throw Error(path.string() + ": unsupported .npy dtype " + a.dtype);
  if (header.find("'fortran_order': True") != std::string::npos) throw Error(path.string() + ": Fortran order");
  if (!std::regex_search(header, m, std::regex("'shape':\\s*\\(([0-9, ]*)\\)"))) throw Error(bad);
  std::stringstream ss(m[1].str());
  uint64_t n = 1;
  for (std::string item; std::getline(ss, item, ',');) {
    if (item.find_first_not_of(' ') == std::string::npos) continue;
    if (item.size() > 12) throw Error(bad);
    a.shape.push_back(std::stoll(item));
    if (__builtin_mul_overflow(n, static_cast<uint64_t>(a.shape.back()), &n)) throw Error(bad);
  }
  uint64_t bytes;
  if (__builtin_mul_overflow(n, item_size(a.dtype), &bytes) || bytes != all.size() - hstart - hlen)
    throw Error(path.string() + ": data size does not match the shape");
  a.bytes.assign(all.begin() + static_cast<long>(hstart + hlen), all.end());
  return a;
}

void write_npy(const std::filesystem::path& path, const NpyArray& a) {
  std::string shape = "(";
  for (size_t i = 0; i < a.shape.size(); ++i)
    shape += std::to_string(a.shape[i]) + (a.shape.size() == 1 ? "," : (i + 1 < a.shape.size() ? ", " : ""));
  shape += ")";
  std::string header = "{'descr': '" + a.dtype + "', 'fortran_order': False, 'shape': " + shape + ", }";
  while ((10 + header.size() + 1) % 64) header += ' ';
  header += '\n';
  std::ofstream out(path, std::ios::binary);
  if (!out) throw Error(path.string() + ": cannot write");
  out.write("\x93NUMPY\x01\x00", 8);
  const uint16_t len = static_cast<uint16_t>(header.size());
  out.write(reinterpret_cast<const char*>(&len), 2);
  out << header;
  out.write(reinterpret_cast<const char*>(a.bytes.data()), static_cast<std::streamsize>(a.bytes.size()));
  if (!out) throw Error(path.string() + ": cannot write");
}

NpyArray make_f32(std::vector<int64_t> shape, const float* data) {
  NpyArray a{"<f4", std::move(shape), {}};
  a.bytes.assign(reinterpret_cast<const uint8_t*>(data), reinterpret_cast<const uint8_t*>(data) + a.numel() * 4);
  return a;
}

NpyArray make_i64(std::vector<int64_t> shape, const int64_t* data) {
  NpyArray a{"<i8", std::move(shape), {}};
  a.bytes.assign(reinterpret_cast<const uint8_t*>(data), reinterpret_cast<const uint8_t*>(data) + a.numel() * 8);
  return a;
}

}  // namespace hf2onnx
