#include "test_util.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

namespace hf2onnx::test {

int64_t Array::numel() const {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

Array read_npy(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path.string() + ": cannot open");
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (all.size() < 10 || all.compare(1, 5, "NUMPY") != 0) throw std::runtime_error(path.string() + ": not .npy");
  size_t hlen, hstart;
  if (all[6] == 1) {
    hlen = static_cast<uint8_t>(all[8]) | (static_cast<uint8_t>(all[9]) << 8);
    hstart = 10;
  } else {
    uint32_t v;
    std::memcpy(&v, all.data() + 8, 4);
    hlen = v;
    hstart = 12;
  }
  std::string header = all.substr(hstart, hlen);
  std::smatch m;
  Array a;
  if (!std::regex_search(header, m, std::regex("'descr':\\s*'([^']+)'"))) throw std::runtime_error("bad npy header");
  a.dtype = m[1];
  if (!std::regex_search(header, m, std::regex("'shape':\\s*\\(([^)]*)\\)"))) throw std::runtime_error("bad npy header");
  std::stringstream ss(m[1].str());
  std::string item;
  while (std::getline(ss, item, ','))
    if (item.find_first_not_of(' ') != std::string::npos) a.shape.push_back(std::stoll(item));
  a.bytes.assign(all.begin() + static_cast<long>(hstart + hlen), all.end());
  return a;
}

void write_npy(const fs::path& path, const Array& a) {
  std::string shape = "(";
  for (size_t i = 0; i < a.shape.size(); ++i) shape += std::to_string(a.shape[i]) + (a.shape.size() == 1 ? "," : (i + 1 < a.shape.size() ? ", " : ""));
  shape += ")";
  std::string header = "{'descr': '" + a.dtype + "', 'fortran_order': False, 'shape': " + shape + ", }";
  while ((10 + header.size() + 1) % 64) header += ' ';
  header += '\n';
  std::ofstream out(path, std::ios::binary);
  out.write("\x93NUMPY\x01\x00", 8);
  uint16_t len = static_cast<uint16_t>(header.size());
  out.write(reinterpret_cast<const char*>(&len), 2);
  out << header;
  out.write(reinterpret_cast<const char*>(a.bytes.data()), static_cast<std::streamsize>(a.bytes.size()));
}

Array make_f32(std::vector<int64_t> shape, const float* data) {
  Array a{"<f4", std::move(shape), {}};
  a.bytes.assign(reinterpret_cast<const uint8_t*>(data), reinterpret_cast<const uint8_t*>(data) + a.numel() * 4);
  return a;
}

Array make_i64(std::vector<int64_t> shape, const int64_t* data) {
  Array a{"<i8", std::move(shape), {}};
  a.bytes.assign(reinterpret_cast<const uint8_t*>(data), reinterpret_cast<const uint8_t*>(data) + a.numel() * 8);
  return a;
}

fs::path source_dir() { return HF2ONNX_SOURCE_DIR; }
fs::path models_dir() { return source_dir() / "models"; }
fs::path binary() { return HF2ONNX_BINARY; }

// Under a folder named after the running test, so that tests running in parallel never share paths.
fs::path temp_dir(const std::string& name) {
  std::string test = "no_test";
  if (const auto* info = ::testing::UnitTest::GetInstance()->current_test_info())
    test = std::string(info->test_suite_name()) + "." + info->name();
  for (auto& c : test)
    if (!isalnum(static_cast<unsigned char>(c)) && c != '.') c = '_';
  fs::path p = fs::path(HF2ONNX_TEST_TMP) / test / name;
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

namespace {
std::string quote(const std::string& s) { return "'" + std::regex_replace(s, std::regex("'"), "'\\''") + "'"; }

fs::path stderr_file() {
  fs::create_directories(HF2ONNX_TEST_TMP);
  return fs::path(HF2ONNX_TEST_TMP) / ("stderr." + std::to_string(getpid()) + ".txt");
}

CliResult run_shell(const std::string& cmd, const fs::path& err_file) {
  CliResult r;
  FILE* p = popen((cmd + " 2>" + quote(err_file.string())).c_str(), "r");
  if (!p) throw std::runtime_error("popen failed");
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream e(err_file);
  r.err.assign(std::istreambuf_iterator<char>(e), std::istreambuf_iterator<char>());
  return r;
}
}  // namespace

void run_ort(const fs::path& model, const fs::path& in_dir, const fs::path& out_dir) {
  run_ort(std::vector<OrtJob>{{model, in_dir, out_dir}});
}

void run_ort(const std::vector<OrtJob>& jobs) {
  std::string cmd = "node " + quote((source_dir() / "tools" / "ort_run.mjs").string());
  for (const auto& j : jobs)
    cmd += " " + quote(j.model.string()) + " " + quote(j.in_dir.string()) + " " + quote(j.out_dir.string());
  auto r = run_shell(cmd, stderr_file());
  if (r.exit_code != 0) throw std::runtime_error("ONNX Runtime failed: " + r.err);
}

CliResult run_cli(const std::string& args) {
  return run_shell(quote(binary().string()) + " " + args, stderr_file());
}

onnx::ModelProto load_onnx(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  onnx::ModelProto m;
  EXPECT_TRUE(m.ParseFromIstream(&in)) << path;
  return m;
}

std::string run_tool(const std::string& script, const std::string& args) {
  auto r = run_shell("node " + quote((source_dir() / "tools" / script).string()) + " " + args, stderr_file());
  if (r.exit_code != 0) throw std::runtime_error(script + " failed: " + r.err);
  return r.err;
}

void write_first_step_inputs(const fs::path& ref_dir, const fs::path& out_dir, int layers, int kv_heads, int head_dim) {
  fs::create_directories(out_dir);
  for (const auto& e : fs::directory_iterator(ref_dir)) fs::copy_file(e.path(), out_dir / e.path().filename(),
                                                                      fs::copy_options::overwrite_existing);
  const int64_t batch = read_npy(ref_dir / "input_ids.npy").shape.at(0);
  for (int i = 0; i < layers; ++i)
    for (const char* kv : {"key", "value"}) {
      Array empty{"<f4", {batch, kv_heads, 0, head_dim}, {}};
      write_npy(out_dir / ("past_key_values." + std::to_string(i) + "." + kv + ".npy"), empty);
    }
}

double max_abs_diff(const Array& a, const Array& b) {
  if (a.shape != b.shape || a.dtype != "<f4" || b.dtype != "<f4") return INFINITY;
  double m = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    double d = std::fabs(static_cast<double>(a.f32()[i]) - b.f32()[i]);
    if (std::isnan(d)) return INFINITY;  // a NaN anywhere is a failure, never skipped
    m = std::max(m, d);
  }
  return m;
}

double cosine(const Array& a, const Array& b) {
  if (a.shape != b.shape) return -2;
  double ab = 0, aa = 0, bb = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    ab += double(a.f32()[i]) * b.f32()[i];
    aa += double(a.f32()[i]) * a.f32()[i];
    bb += double(b.f32()[i]) * b.f32()[i];
  }
  return ab / (std::sqrt(aa) * std::sqrt(bb) + 1e-30);
}

}  // namespace hf2onnx::test

namespace hf2onnx::test {
namespace {
void le(std::string& s, uint64_t v, int n) {
  for (int i = 0; i < n; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
}  // namespace

void write_zip(const fs::path& path, const std::vector<std::pair<std::string, std::string>>& entries) {
  std::string out, central;
  for (const auto& [name, data] : entries) {
    uint64_t offset = out.size();
    le(out, 0x04034b50, 4); le(out, 20, 2); le(out, 0, 2); le(out, 0, 2); le(out, 0, 4);
    le(out, 0, 4); le(out, data.size(), 4); le(out, data.size(), 4); le(out, name.size(), 2); le(out, 0, 2);
    out += name;
    out += data;
    le(central, 0x02014b50, 4); le(central, 20, 2); le(central, 20, 2); le(central, 0, 2); le(central, 0, 2);
    le(central, 0, 4); le(central, 0, 4); le(central, data.size(), 4); le(central, data.size(), 4);
    le(central, name.size(), 2); le(central, 0, 2); le(central, 0, 2); le(central, 0, 2); le(central, 0, 2);
    le(central, 0, 4); le(central, offset, 4);
    central += name;
  }
  uint64_t cd_offset = out.size();
  out += central;
  le(out, 0x06054b50, 4); le(out, 0, 2); le(out, 0, 2); le(out, entries.size(), 2); le(out, entries.size(), 2);
  le(out, central.size(), 4); le(out, cd_offset, 4); le(out, 0, 2);
  write_file(path, out);
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_file(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

fs::path copy_fixture(const std::string& fixture, const std::string& tmp_name) {
  fs::path dst = temp_dir(tmp_name) / fixture;
  fs::copy(models_dir() / fixture, dst, fs::copy_options::recursive);
  for (auto& e : fs::recursive_directory_iterator(dst))
    fs::permissions(e.path(), fs::perms::owner_write, fs::perm_options::add);
  return dst;
}

}  // namespace hf2onnx::test
