// Tier 1: hostile inputs (issue 8). Every crafted file is built here, byte by byte; each must give a
// one-line hf2onnx::Error naming the file and the problem, or the right values, never a crash, a wrong
// result or memory out of proportion to its size.
#include <cstring>
#include <fstream>
#include <malloc.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <gtest/gtest.h>

#include "common/mapped_file.h"
#include "common/test_util.h"
#include "hf/checkpoint.h"
#include "hf/config.h"
#include "hf/pickle.h"
#include "hf/safetensors.h"
#include "hf/torch_bin.h"
#include "hf/zip_reader.h"
#include "hf2onnx/error.h"
#include "onnx/reader.h"

namespace hf2onnx::test {
namespace {


#define EXPECT_ERROR(msg, fragment) EXPECT_NE((msg).find(fragment), std::string::npos) << (msg)

std::vector<float> floats(const hf::TensorData& t) {
  std::vector<float> v(static_cast<size_t>(t.numel()));
  hf::convert_to_float32(t, v.data());
  return v;
}

std::string le(uint64_t v, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += static_cast<char>((v >> (8 * i)) & 0xff);
  return s;
}

// A few pickle opcodes, enough to write what torch.save writes.
namespace pk {
std::string str(const std::string& s) { return "X" + le(s.size(), 4) + s; }
std::string i64(int64_t v) { return "\x8a\x08" + le(static_cast<uint64_t>(v), 8); }  // LONG1, 8 bytes
std::string global(const std::string& module, const std::string& name) { return "c" + module + "\n" + name + "\n"; }
std::string tuple(const std::vector<std::string>& items) {
  std::string s = "(";
  for (const auto& i : items) s += i;
  return s + "t";
}
std::string ints(const std::vector<int64_t>& v) {
  std::vector<std::string> items;
  for (int64_t x : v) items.push_back(i64(x));
  return tuple(items);
}
}  // namespace pk

struct FakeTensor {
  std::string name, key;
  int64_t offset;
  std::vector<int64_t> shape, stride;
  std::string view;  // legacy only: a pickled (view_key, offset, size) tuple, or ""
};

// The state dict pickle: {name: _rebuild_tensor_v2(persistent storage, offset, shape, stride)}.
std::string state_dict_pickle(const std::vector<FakeTensor>& tensors, int64_t storage_numel) {
  std::string p = "\x80\x02}(";
  for (const auto& t : tensors) {
    std::vector<std::string> pid = {pk::str("storage"), pk::global("torch", "FloatStorage"), pk::str(t.key),
                                    pk::str("cpu"), pk::i64(storage_numel)};
    if (!t.view.empty()) pid.push_back(t.view);
    p += pk::str(t.name) + pk::global("torch._utils", "_rebuild_tensor_v2") +
         pk::tuple({pk::tuple(pid) + "Q", pk::i64(t.offset), pk::ints(t.shape), pk::ints(t.stride)}) + "R";
  }
  return p + "u.";
}

// Legacy torch.save (torch < 1.6): magic, protocol, sys_info, state dict, storage keys, then each
// storage as an int64 element count and its bytes.
std::string legacy_checkpoint(const std::vector<FakeTensor>& tensors, const std::vector<float>& storage) {
  std::string f = std::string("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.", 15);
  f += std::string("\x80\x02M\xe9\x03.", 6);  // protocol 1001
  f += "\x80\x02}.";                           // sys_info
  f += state_dict_pickle(tensors, static_cast<int64_t>(storage.size()));
  f += "\x80\x02(" + pk::str("0") + "l.";
  f += le(storage.size(), 8) + std::string(reinterpret_cast<const char*>(storage.data()), storage.size() * 4);
  return f;
}

std::string view(int64_t offset, int64_t size) { return pk::tuple({pk::str("v"), pk::i64(offset), pk::i64(size)}); }

const std::vector<float> kStorage = {0, 1, 2, 3, 4, 5, 6, 7};

TEST(HostileTorchBin, LegacyViewsReadTheRightValues) {
  fs::path dir = temp_dir("legacy_view");
  write_file(dir / "pytorch_model.bin",
             legacy_checkpoint({{"a", "0", 0, {3}, {1}, view(2, 3)},         // storage[2:5]
                                {"b", "0", 1, {2}, {2}, view(4, 4)},         // storage[4:8][1::2]
                                {"c", "0", 1, {2, 2}, {1, 2}, ""}},          // no view: storage[1:6] strided
                               kStorage));
  auto t = hf::read_torch_bin(dir / "pytorch_model.bin");
  EXPECT_EQ(floats(t.at("a")), (std::vector<float>{2, 3, 4}));
  EXPECT_EQ(floats(t.at("b")), (std::vector<float>{5, 7}));
  EXPECT_EQ(floats(t.at("c")), (std::vector<float>{1, 3, 2, 4}));
}

TEST(HostileTorchBin, LegacyViewsOutsideTheirStorageAreErrors) {
  fs::path dir = temp_dir("legacy_view_bad");
  const int64_t k4e9 = 4000000000;
  struct Case {
    std::string view;
    int64_t offset;
    std::vector<int64_t> shape;
  };
  for (const Case& c : std::vector<Case>{{view(k4e9, 3), 0, {3}},      // far past the storage (was SIGSEGV)
                                          {view(-k4e9, 3), 0, {3}},     // before it (was SIGSEGV)
                                          {view(1000, 3), 0, {3}},      // past it (was wrong weights, exit 0)
                                          {view(-1, 3), 0, {3}},
                                          {view(6, 3), 0, {3}},         // view ends one past the storage
                                          {view(2, 3), 1, {3}},         // tensor ends one past the view
                                          {view(2, 3), -1, {1}},
                                          {view(2, INT64_MAX), 0, {3}},  // view size that wraps
                                          {view(INT64_MAX, 2), 0, {1}}}) {
    write_file(dir / "pytorch_model.bin", legacy_checkpoint({{"w", "0", c.offset, c.shape, {1}, c.view}}, kStorage));
    std::string msg = error_of([&] { hf::read_torch_bin(dir / "pytorch_model.bin"); });
    EXPECT_ERROR(msg, "pytorch_model.bin: corrupt checkpoint: tensor 'w'");
  }
}

std::vector<std::pair<std::string, std::string>> zip_checkpoint(const std::vector<FakeTensor>& tensors,
                                                                 const std::vector<float>& storage,
                                                                 int64_t declared_numel) {
  return {{"archive/data.pkl", state_dict_pickle(tensors, declared_numel)},
          {"archive/data/0", std::string(reinterpret_cast<const char*>(storage.data()), storage.size() * 4)}};
}

TEST(HostileTorchBin, ZipViewsReadTheRightValuesAndOverflowsAreErrors) {
  fs::path dir = temp_dir("zip_view");
  write_zip(dir / "pytorch_model.bin", zip_checkpoint({{"a", "0", 3, {2}, {1}, ""}, {"b", "0", 1, {2, 3}, {3, 1}, ""}},
                                                      kStorage, 8));
  auto t = hf::read_torch_bin(dir / "pytorch_model.bin");
  EXPECT_EQ(floats(t.at("a")), (std::vector<float>{3, 4}));
  EXPECT_EQ(floats(t.at("b")), (std::vector<float>{1, 2, 3, 4, 5, 6}));

  const int64_t k2_32 = int64_t(1) << 32, k2_40 = int64_t(1) << 40, k2_62 = int64_t(1) << 62;
  struct Case {
    int64_t offset;
    std::vector<int64_t> shape, stride;
    int64_t declared;
  };
  for (const Case& c : std::vector<Case>{
           {0, {k2_32, k2_32}, {1, k2_32}, 8},  // element count wraps to 0, last element at 2^64 - 1
           {0, {k2_40, k2_40}, {0, 0}, 8},      // element count overflows
           {0, {3, k2_62}, {k2_62, 0}, 8},      // (3 - 1) * 2^62 wraps
           {0, {2}, {INT64_MAX}, 8},            // last element past the storage
           {INT64_MAX, {1}, {1}, 8},            // offset past the storage
           {0, {-1}, {1}, 8},                   // negative size
           {0, {2}, {-1}, 8},                   // negative stride
           {0, {1}, {1}, 9},                    // storage declared larger than its bytes
           {0, {1}, {1}, k2_62},                // ... whose size in bytes wraps
           {0, {1}, {1}, -1}}) {
    write_zip(dir / "pytorch_model.bin", zip_checkpoint({{"w", "0", c.offset, c.shape, c.stride, ""}}, kStorage,
                                                        c.declared));
    std::string msg = error_of([&] { hf::read_torch_bin(dir / "pytorch_model.bin"); });
    EXPECT_ERROR(msg, "pytorch_model.bin: corrupt checkpoint: tensor 'w'");
  }
}


// --- safetensors: sizes are checked in bytes -----------------------------------------------------

std::string safetensors_file(const std::string& header, size_t data_bytes) {
  return le(header.size(), 8) + header + std::string(data_bytes, '\0');
}

TEST(HostileSafetensors, ShapesWhoseBytesOverflowAreErrors) {
  fs::path dir = temp_dir("st_overflow");
  const std::vector<std::string> shapes = {
      "[2147483648, 2147483648]",          // 2^62 elements, 0 bytes once multiplied by 4 (was accepted)
      "[4611686018427387904, 4]",          // 2^64 bytes
      "[9223372036854775807]",             // 2^63 - 1 elements of 4 bytes
      "[18446744073709551615]",            // 2^64 - 1
      "[0, 4294967296, 4294967296]",       // empty, but its strides would wrap
      "[-1, 4]", "[2.5]", "[\"1\"]"};
  for (const auto& shape : shapes) {
    write_file(dir / "m.safetensors",
               safetensors_file(R"({"w":{"dtype":"F32","shape":)" + shape + R"(,"data_offsets":[0,0]}})", 0));
    std::string msg = error_of([&] { hf::read_safetensors(dir / "m.safetensors"); });
    EXPECT_ERROR(msg, "m.safetensors: corrupt safetensors: tensor 'w': shape") << shape;
  }
  // Empty tensors are legal.
  write_file(dir / "m.safetensors",
             safetensors_file(R"({"w":{"dtype":"F32","shape":[0, 3],"data_offsets":[0,0]}})", 0));
  EXPECT_EQ(hf::read_safetensors(dir / "m.safetensors").at("w").numel(), 0);
}

// --- config.json: nesting depth, no values in messages --------------------------------------------

std::string nested(size_t levels, const std::string& inner) {
  return std::string(levels, '[') + inner + std::string(levels, ']');
}

TEST(HostileConfig, DeepNestingIsAnErrorNotAStackOverflow) {
  const size_t deep = 300000;
  for (const std::string& text :
       {R"({"hidden_size": )" + nested(deep, "1") + "}",
        R"({"rope_scaling": {"type": "linear", "factor": )" + nested(deep, "2") + "}}",
        R"({"rope_scaling": )" + std::string(deep, '{') + std::string("\"a\"") + "}"}) {
    std::string msg = error_of([&] { hf::Config::parse(text, "deep.json"); });
    EXPECT_ERROR(msg, "deep.json: invalid JSON (nested deeper than 64 levels");
  }
  // 64 levels are fine, including through get_object, and errors about such values stay short.
  auto c = hf::Config::parse(R"({"hidden_size": )" + nested(62, "1") + R"(, "rope_scaling": {"factor": )" +
                                 nested(62, "2") + "}}",
                             "ok.json");
  std::string msg = error_of([&] { c.get_int("hidden_size"); });
  EXPECT_EQ(msg, "ok.json: 'hidden_size' must be an integer, got a list");
  auto rope = c.get_object("rope_scaling");
  ASSERT_TRUE(rope.has_value());
  msg = error_of([&] { rope->get_double("factor"); });
  EXPECT_EQ(msg, "ok.json (rope_scaling): 'factor' must be a number, got a list");
  // Brackets inside strings are not nesting.
  EXPECT_EQ(hf::Config::parse(R"({"s": ")" + std::string(1000, '[') + R"(\"]", "n": 1})", "s.json").get_int("n"), 1);
}

TEST(HostileConfig, OnlySmallRegularFilesAreRead) {
  fs::path dir = temp_dir("config_files");
  fs::create_symlink("/dev/zero", dir / "config.json");  // would be read forever
  EXPECT_ERROR(error_of([&] { hf::Config::load(dir / "config.json"); }), "config.json: not a regular file");
  fs::remove(dir / "config.json");
  ASSERT_EQ(mkfifo((dir / "config.json").c_str(), 0600), 0);  // would block
  EXPECT_ERROR(error_of([&] { hf::Config::load(dir / "config.json"); }), "config.json: not a regular file");
  fs::remove(dir / "config.json");
  { std::ofstream(dir / "config.json") << "{}"; }
  fs::resize_file(dir / "config.json", (64u << 20) + 1);  // sparse
  EXPECT_ERROR(error_of([&] { hf::Config::load(dir / "config.json"); }), "config.json: too large for a JSON file");
  fs::rename(dir / "config.json", dir / "model.safetensors.index.json");
  EXPECT_ERROR(error_of([&] { hf::load_checkpoint(dir); }), "model.safetensors.index.json: too large for a JSON file");
  EXPECT_ERROR(error_of([&] { hf::Config::load(dir / "config.json"); }),
               "config.json: cannot open (a model folder needs a config.json)");
}

TEST(HostileConfig, ErrorsNeverQuoteTheFile) {
  const std::string secret = "sk-SECRET-0123456789";
  for (const std::string& text : {"\"" + secret, "{\"" + secret, "{\"a\": \"" + secret + "\"", secret,
                                  "{\"a\": 1} " + secret}) {
    std::string msg = error_of([&] { hf::Config::parse(text, "leak.json"); });
    EXPECT_ERROR(msg, "leak.json: invalid JSON (syntax error at byte ");
    EXPECT_EQ(msg.find("SECRET"), std::string::npos) << msg;
  }
  auto c = hf::Config::parse(R"({"a": ")" + secret + R"(", "b": [")" + secret + R"("], "c": 1e300,
                                  "d": 18446744073709551615, "e": -9223372036854775808})", "leak.json");
  for (const char* key : {"a", "b"}) {
    for (const std::string& msg : {error_of([&] { c.get_int(key); }), error_of([&] { c.get_bool(key); }),
                                   error_of([&] { c.get_double(key); }), error_of([&] { c.object_size(key); }),
                                   error_of([&] { c.get_object(key); })}) {
      EXPECT_ERROR(msg, std::string("leak.json: '") + key + "' must be");
      EXPECT_EQ(msg.find("SECRET"), std::string::npos) << msg;
    }
  }
  EXPECT_EQ(error_of([&] { c.get_strings("b"); }), "");
  EXPECT_EQ(error_of([&] { c.get_int("c"); }), "leak.json: 'c' must be an integer, got a non-integer number");
  EXPECT_EQ(error_of([&] { c.get_int("d"); }), "leak.json: 'd' is too large");
  EXPECT_EQ(c.get_int("e"), INT64_MIN);
}

// Peak resident memory of this process, in bytes (VmHWM), and a way to start measuring it afresh.
uint64_t status_kb(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(field, 0) == 0) return std::stoull(line.substr(std::strlen(field) + 1)) * 1024;
  return 0;
}
bool reset_peak_rss() {
  malloc_trim(0);  // give freed memory back first, so that the next peak is measured from the bottom
  std::ofstream out("/proc/self/clear_refs");
  out << "5";
  out.flush();
  return static_cast<bool>(out);
}

// Pickles of 4 MB and more that ask for much more memory than their size. The load may fail (with an
// Error) or succeed, but must stay within a bounded multiple of the input (it once took 1.3 GB).
TEST(HostilePickle, AmplificationPicklesStayWithinMemoryBounds) {
  const size_t n = 4u << 20;
  auto repeat = [](const std::string& unit, size_t bytes) {
    std::string s;
    s.reserve(bytes + unit.size());
    while (s.size() < bytes) s += unit;
    return s;
  };
  struct Case {
    const char* what;
    std::string body;
  };
  const std::vector<Case> cases = {
      {"None", repeat("N", n)},                        // one object per byte (was 1.3 GB)
      {"None+POP", repeat("N0", n)},
      {"dicts", repeat("}0", n)},                      // a fresh object every 2 bytes
      {"memoized dicts", repeat("}\x94" "0", n)},      // ... each also kept in the memo
      {"list of None", "]" + repeat("Na", n)},         // a container that grows by 16 bytes per 2
      {"dict of None", "}" + repeat("NNs", n)},
      {"marks", repeat("(", n)},
      {"DUP", "N" + repeat("2", n)},
      {"shared shape", "\x80\x02" + pk::global("torch._utils", "_rebuild_tensor_v2") + "\x94" "0(" +
                           repeat("K\x01", 2 * 60000) + "t\x94" "0)\x94" "0" +
                           repeat(std::string("h\x00(h\x02QK\x00h\x01h\x01tR0", 15), n)},  // 1 MB per 15 bytes
  };
  auto storage = [](const hf::pickle::Ref&) {
    auto s = std::make_shared<hf::pickle::Object>();
    s->kind = hf::pickle::Kind::Storage;
    return s;
  };
  ASSERT_TRUE(reset_peak_rss()) << "cannot reset the peak RSS (/proc/self/clear_refs)";
  for (const auto& c : cases) {
    std::string p = (c.body.rfind("\x80", 0) == 0 ? "" : "\x80\x02") + c.body + ".";
    ASSERT_GE(p.size(), n);
    reset_peak_rss();
    const uint64_t before = status_kb("VmRSS:");
    std::string msg = error_of([&] {
      hf::pickle::load(reinterpret_cast<const uint8_t*>(p.data()), p.size(), storage, "amp.pkl");
    });
    const uint64_t growth = status_kb("VmHWM:") - before;
    // The loader's budget is 64 MB + 64 bytes per input byte; allow for what it does not count.
    EXPECT_LT(growth, (64u << 20) + 80 * p.size()) << c.what << ": " << msg;
    EXPECT_TRUE(msg.empty() || msg.rfind("amp.pkl: ", 0) == 0) << c.what << ": " << msg;
    std::printf("  %-16s %5.1f MB input, peak RSS +%6.1f MB: %s\n", c.what, p.size() / 1048576.0,
                growth / 1048576.0, msg.empty() ? "loaded" : msg.c_str());
  }
}

// The budget leaves room for real checkpoints: a state dict's pickle charges about 30 bytes per byte.
TEST(HostilePickle, RealPicklesStayWellWithinTheBudget) {
  auto file = MappedFile::open(models_dir() / "bert" / "pytorch_model.bin");
  hf::ZipArchive zip(file);
  const hf::ZipEntry* pkl = nullptr;
  for (const auto& [name, e] : zip.entries())
    if (name.size() > 9 && name.substr(name.size() - 9) == "/data.pkl") pkl = &e;
  ASSERT_NE(pkl, nullptr);
  auto storage = [](const hf::pickle::Ref&) {
    auto s = std::make_shared<hf::pickle::Object>();
    s->kind = hf::pickle::Kind::Storage;
    return s;
  };
  auto r = hf::pickle::load(pkl->data, pkl->size, storage, "data.pkl");
  const double per_byte = static_cast<double>(r.memory) / pkl->size;
  std::printf("  bert data.pkl: %zu bytes, %.1f bytes of budget per byte\n", static_cast<size_t>(pkl->size), per_byte);
  EXPECT_LT(per_byte, 40);
}

TEST(HostilePickle, LegacyMagicIsCheckedBeforeParsing) {
  // A 4 MB pickle of None where the magic number should be: refused from its first bytes.
  fs::path dir = temp_dir("legacy_magic");
  write_file(dir / "pytorch_model.bin", "\x80\x02" + std::string(4u << 20, 'N') + ".");
  reset_peak_rss();
  const uint64_t before = status_kb("VmRSS:");
  std::string msg = error_of([&] { hf::read_torch_bin(dir / "pytorch_model.bin"); });
  EXPECT_ERROR(msg, "pytorch_model.bin: not a torch checkpoint");
  EXPECT_LT(status_kb("VmHWM:") - before, 16u << 20);
}

// --- the lazy ONNX reader: declared sizes against the bytes present ---------------------------------

onnx::ModelProto model_with(const onnx::TensorProto& init) {
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.add_opset_import()->set_version(17);
  m.mutable_graph()->set_name("g");
  *m.mutable_graph()->add_initializer() = init;
  return m;
}

onnx::TensorProto tensor(std::vector<int64_t> dims) {
  onnx::TensorProto t;
  t.set_name("w");
  t.set_data_type(onnx::TensorProto::FLOAT);
  for (auto d : dims) t.add_dims(d);
  return t;
}

TEST(HostileOnnx, DeclaredSizesAreCheckedBeforeAllocating) {
  fs::path dir = temp_dir("onnx_sizes");
  auto write = [&](const onnx::TensorProto& t) {
    write_file(dir / "m.onnx", model_with(t).SerializeAsString());
    return dir / "m.onnx";
  };
  const int64_t k2_20 = 1 << 20, k2_32 = int64_t(1) << 32, k2_62 = int64_t(1) << 62;
  // A small file claiming a large float tensor in float_data (was 1 GB, then std::bad_alloc).
  for (const auto& dims : std::vector<std::vector<int64_t>>{{16384, 16384}, {k2_20, k2_20}}) {
    onnx::TensorProto t = tensor(dims);
    t.add_float_data(1.f);
    fs::path f = write(t);
    EXPECT_LT(fs::file_size(f), 100u);
    reset_peak_rss();
    const uint64_t before = status_kb("VmRSS:");
    std::string msg = error_of([&] {
      for (const auto& init : read_onnx_lazy(f).initializers) (void)init.bytes();
    });
    EXPECT_ERROR(msg, "m.onnx: initializer 'w' holds 1 values for ");
    EXPECT_LT(status_kb("VmHWM:") - before, 16u << 20);
  }
  // Negative and wrapping dims, in typed fields and in raw data.
  for (const auto& dims : std::vector<std::vector<int64_t>>{{-1, 4}, {4, -1}, {k2_32, k2_32}, {k2_62, 4}, {3, INT64_MAX},
                                                            {0, k2_32, k2_32}}) {
    onnx::TensorProto t = tensor(dims);
    std::string msg = error_of([&] { read_onnx_lazy(write(t)); });
    EXPECT_ERROR(msg, "m.onnx: initializer 'w' has a");
    t.set_raw_data(std::string(16, '\0'));
    msg = error_of([&] { read_onnx_lazy(write(t)); });
    EXPECT_ERROR(msg, "m.onnx: initializer 'w' has a");
  }
  // Typed fields that agree with the dims are read.
  onnx::TensorProto ok = tensor({2, 2});
  for (float v : {1.f, 2.f, 3.f, 4.f}) ok.add_float_data(v);
  auto m = read_onnx_lazy(write(ok));
  ASSERT_EQ(m.initializers.size(), 1u);
  EXPECT_EQ(m.initializers[0].floats(), (std::vector<float>{1, 2, 3, 4}));
}

// Found by tools/fuzz (onnx): floats() of an empty initializer passed a null pointer to memcpy (UBSan).
TEST(HostileOnnx, EmptyInitializersAreReadInEveryLayout) {
  fs::path dir = temp_dir("onnx_empty");
  onnx::TensorProto typed = tensor({0, 4}), raw = tensor({4, 0});
  raw.set_raw_data("");
  for (const auto& t : {typed, raw, tensor({0})}) {
    write_file(dir / "m.onnx", model_with(t).SerializeAsString());
    auto m = read_onnx_lazy(dir / "m.onnx");
    ASSERT_EQ(m.initializers.size(), 1u);
    EXPECT_EQ(m.initializers[0].numel(), 0);
    EXPECT_TRUE(m.initializers[0].floats().empty());
    EXPECT_EQ(m.initializers[0].bytes().size, 0u);
  }
}

TEST(HostileOnnx, ExternalDataNumbersAreChecked) {
  fs::path dir = temp_dir("onnx_external");
  write_file(dir / "w.bin", std::string(64, '\0'));
  auto with = [&](const std::string& offset, const std::string& length) {
    onnx::TensorProto t = tensor({2, 2});
    t.set_data_location(onnx::TensorProto::EXTERNAL);
    auto add = [&](const char* k, const std::string& v) {
      auto* kv = t.add_external_data();
      kv->set_key(k);
      kv->set_value(v);
    };
    add("location", "w.bin");
    if (!offset.empty()) add("offset", offset);
    if (!length.empty()) add("length", length);
    write_file(dir / "m.onnx", model_with(t).SerializeAsString());
    return error_of([&] { read_onnx_lazy(dir / "m.onnx"); });
  };
  EXPECT_EQ(with("16", "16"), "");
  EXPECT_EQ(with("48", ""), "");
  for (const auto& [offset, length] : std::vector<std::pair<std::string, std::string>>{
           {"abc", "16"}, {"-1", "16"}, {"16", "1e3"}, {"18446744073709551616", "16"}, {" 16", "16"}, {"0x10", "16"}}) {
    std::string msg = with(offset, length);
    EXPECT_ERROR(msg, "m.onnx: initializer 'w' has an invalid external data ") << offset << " " << length;
  }
  EXPECT_ERROR(with("18446744073709551615", "16"), "lies outside the file");
  EXPECT_ERROR(with("0", "12"), "m.onnx: initializer 'w' has 12 bytes for its shape");
}

// --- messages never quote what is not a name, and quote names on one line --------------------------

TEST(HostileMessages, AFileThatIsNotWhatItClaimsIsNeverQuoted) {
  // A symlinked secret in place of each file a reader opens.
  const std::string secret = "ghp_SECRETSECRET0123456789abcdefghijklmnopq\nsecond SECRET line\n";
  fs::path dir = temp_dir("secret");
  for (const char* name : {"model.safetensors", "pytorch_model.bin", "model.onnx", "config.json",
                           "model.safetensors.index.json"}) {
    write_file(dir / name, secret);
    std::string msg = error_of([&] {
      const std::string n = name;
      if (n == "model.safetensors") hf::read_safetensors(dir / name);
      if (n == "pytorch_model.bin") hf::read_torch_bin(dir / name);
      if (n == "model.onnx") read_onnx_lazy(dir / name);
      if (n == "config.json") hf::Config::load(dir / name);
      if (n == "model.safetensors.index.json") hf::load_checkpoint(dir);
    });
    EXPECT_ERROR(msg, name);
    EXPECT_EQ(msg.find("SECRET"), std::string::npos) << msg;
    EXPECT_EQ(msg.find("ghp"), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    fs::remove(dir / name);
  }
}

TEST(HostileMessages, NamesAreEscapedAndShortened) {
  EXPECT_EQ(quote_name("encoder.weight"), "'encoder.weight'");
  EXPECT_EQ(quote_name("a\nb\x1b[31m\\"), "'a\\x0ab\\x1b[31m\\x5c'");
  EXPECT_EQ(quote_name(std::string(100, 'x')), "'" + std::string(80, 'x') + "...(100 bytes)'");
  // A zip entry and a pickle global with a line break and terminal escapes stay on one line.
  fs::path dir = temp_dir("names");
  write_zip(dir / "pytorch_model.bin", {{"archive/data.pkl", "\x80\x04" + pk::str("os\n\x1b[2J") + pk::str("system") + "\x93."}});
  std::string msg = error_of([&] { hf::read_torch_bin(dir / "pytorch_model.bin"); });
  EXPECT_ERROR(msg, "pytorch_model.bin");
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\x1b'), std::string::npos) << msg;
  write_file(dir / "m.safetensors", safetensors_file(R"({"a\nb\u001b":{"dtype":"F32","shape":[1],"data_offsets":[0,3]}})", 4));
  msg = error_of([&] { hf::read_safetensors(dir / "m.safetensors"); });
  EXPECT_ERROR(msg, "tensor 'a\\x0ab\\x1b': data_offsets span 3 bytes");
}

}  // namespace
}  // namespace hf2onnx::test
