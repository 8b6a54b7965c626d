// Tier 1: checkpoint readers — safetensors, torch zip / legacy pickle, shards, dtype conversion,
// the restricted unpickler's refusals and corrupt files.
#include <cmath>
#include <cstring>

#include <gtest/gtest.h>

#include "common/test_util.h"
#include "hf/checkpoint.h"
#include "hf/config.h"
#include "hf/pickle.h"
#include "hf/safetensors.h"
#include "hf/torch_bin.h"
#include "common/mapped_file.h"
#include "hf/zip_reader.h"
#include "hf2onnx/error.h"

namespace hf2onnx::test {
namespace {

using hf::DType;

std::vector<float> floats(const hf::TensorData& t) {
  std::vector<float> v(static_cast<size_t>(t.numel()));
  hf::convert_to_float32(t, v.data());
  return v;
}


TEST(Float16, HalfAndBfloat16ConvertExactly) {
  EXPECT_EQ(hf::half_to_float(0x3c00), 1.0f);
  EXPECT_EQ(hf::half_to_float(0xc000), -2.0f);
  EXPECT_EQ(hf::half_to_float(0x7bff), 65504.0f);
  EXPECT_EQ(hf::half_to_float(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_EQ(hf::half_to_float(0x0400), std::ldexp(1.0f, -14));  // smallest normal
  EXPECT_TRUE(std::isinf(hf::half_to_float(0x7c00)));
  EXPECT_TRUE(std::isnan(hf::half_to_float(0x7e00)));
  EXPECT_EQ(hf::bfloat16_to_float(0x3f80), 1.0f);
  EXPECT_EQ(hf::bfloat16_to_float(0xc0a0), -5.0f);
}

TEST(Safetensors, RoundTripsEveryDtype) {
  fs::path dir = temp_dir("st_roundtrip");
  float f32[] = {1.5f, -2.f, 3.25f, 0.f, 1e-3f, 7.f};
  uint16_t f16[] = {0x3c00, 0xc000}, bf16[] = {0x3f80, 0x4040};
  double f64[] = {0.5, -0.25};
  int64_t i64[] = {-3, 4};
  int32_t i32[] = {7, -8};
  uint8_t b[] = {1, 0};
  hf::write_safetensors(dir / "m.safetensors", {{"a", DType::F32, {2, 3}, f32}, {"h", DType::F16, {2}, f16},
                                               {"bf", DType::BF16, {2}, bf16}, {"d", DType::F64, {2}, f64},
                                               {"l", DType::I64, {2}, i64}, {"i", DType::I32, {2}, i32},
                                               {"b", DType::Bool, {2}, b}});
  auto t = hf::read_safetensors(dir / "m.safetensors");
  ASSERT_EQ(t.size(), 7u);
  EXPECT_EQ(t["a"].shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(floats(t["a"]), std::vector<float>(f32, f32 + 6));
  EXPECT_EQ(floats(t["h"]), (std::vector<float>{1.f, -2.f}));
  EXPECT_EQ(floats(t["bf"]), (std::vector<float>{1.f, 3.f}));
  EXPECT_EQ(floats(t["d"]), (std::vector<float>{0.5f, -0.25f}));
  EXPECT_EQ(floats(t["l"]), (std::vector<float>{-3.f, 4.f}));
  EXPECT_EQ(floats(t["i"]), (std::vector<float>{7.f, -8.f}));
  EXPECT_EQ(floats(t["b"]), (std::vector<float>{1.f, 0.f}));
}

TEST(Safetensors, CorruptFilesGiveErrorsNamingTheFile) {
  fs::path dir = temp_dir("st_corrupt");
  std::string good = read_file(models_dir() / "bert" / "model.safetensors");
  auto check = [&](const std::string& bytes, const std::string& expect) {
    write_file(dir / "bad.safetensors", bytes);
    std::string msg = error_of([&] { hf::read_safetensors(dir / "bad.safetensors"); });
    EXPECT_NE(msg.find("bad.safetensors"), std::string::npos) << msg;
    EXPECT_NE(msg.find(expect), std::string::npos) << msg;
  };
  check(good.substr(0, good.size() / 2), "truncated");
  check(good.substr(0, 4), "truncated");
  std::string huge = good;
  huge[7] = 0x7f;  // header length ~ 2^62
  check(huge, "implausible");
  std::string bad_json = good;
  bad_json[8] = '[';
  check(bad_json, "corrupt safetensors");
  uint64_t hlen;
  std::memcpy(&hlen, good.data(), 8);
  std::string header = good.substr(8, hlen);
  auto pos = header.find("\"F32\"");
  ASSERT_NE(pos, std::string::npos);
  std::string bad_dtype = good;
  bad_dtype.replace(8 + pos, 5, "\"Q32\"");
  check(bad_dtype, "unsupported dtype Q32");
}

TEST(Safetensors, OffsetsThatDisagreeWithTheShapeAreRejected) {
  fs::path dir = temp_dir("st_offsets");
  std::string header = R"({"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}})";
  std::string bytes(8, '\0');
  uint64_t len = header.size();
  std::memcpy(bytes.data(), &len, 8);
  bytes += header + std::string(16, '\0');
  write_file(dir / "m.safetensors", bytes);
  std::string msg = error_of([&] { hf::read_safetensors(dir / "m.safetensors"); });
  EXPECT_NE(msg.find("needs 16"), std::string::npos) << msg;
}

TEST(TorchBin, ZipFormatMatchesSafetensors) {
  auto st = hf::read_safetensors(models_dir() / "bert" / "model.safetensors");
  auto bin = hf::read_torch_bin(models_dir() / "bert" / "pytorch_model.bin");
  ASSERT_EQ(st.size(), bin.size());
  for (const auto& [name, t] : st) {
    ASSERT_TRUE(bin.count(name)) << name;
    EXPECT_EQ(bin[name].shape, t.shape) << name;
    EXPECT_EQ(floats(bin[name]), floats(t)) << name;
  }
}

TEST(TorchBin, LegacyFormatReadsEveryTensor) {
  auto legacy = hf::read_torch_bin(models_dir() / "bert-legacy" / "pytorch_model.bin");
  auto st = hf::read_safetensors(models_dir() / "bert" / "model.safetensors");  // same architecture and config
  ASSERT_EQ(legacy.size(), st.size());
  for (const auto& [name, t] : st) {
    ASSERT_TRUE(legacy.count(name)) << name;
    EXPECT_EQ(legacy[name].shape, t.shape) << name;
    EXPECT_EQ(legacy[name].dtype, DType::F32);
  }
  // The values are real data: LayerNorm weights are positive scales around 1, not zeros or garbage.
  auto ln = floats(legacy["embeddings.LayerNorm.weight"]);
  double mean = 0;
  for (float v : ln) {
    EXPECT_TRUE(v > 0.5f && v < 1.5f) << v;
    mean += v / ln.size();
  }
  EXPECT_NEAR(mean, 1.0, 0.1);
}

TEST(TorchBin, TruncatedFilesAreErrors) {
  fs::path dir = temp_dir("bin_truncated");
  for (const char* fixture : {"bert", "bert-legacy"}) {
    std::string bytes = read_file(models_dir() / fixture / "pytorch_model.bin");
    for (size_t cut : {bytes.size() / 3, bytes.size() - 100, size_t(50)}) {
      write_file(dir / "pytorch_model.bin", bytes.substr(0, cut));
      std::string msg = error_of([&] { hf::read_torch_bin(dir / "pytorch_model.bin"); });
      EXPECT_NE(msg.find("pytorch_model.bin"), std::string::npos) << fixture << " cut at " << cut << ": " << msg;
    }
  }
}

// Pickles that would run code under an unrestricted unpickler.
const char kOsSystem[] = "cos\nsystem\n(S'echo pwned'\ntR.";                     // protocol 0 GLOBAL
const char kBuiltinsEval[] = "\x80\x04\x8c\x08" "builtins\x8c\x04" "eval\x93\x8c\x03" "1+1\x85R.";  // STACK_GLOBAL

TEST(Pickle, RefusesGlobalsOutsideTheAllowList) {
  std::string msg = error_of([] {
    hf::pickle::load(reinterpret_cast<const uint8_t*>(kOsSystem), sizeof kOsSystem - 1, nullptr, "x.pkl");
  });
  EXPECT_NE(msg.find("'os.system'"), std::string::npos) << msg;
  msg = error_of([] {
    hf::pickle::load(reinterpret_cast<const uint8_t*>(kBuiltinsEval), sizeof kBuiltinsEval - 1, nullptr, "x.pkl");
  });
  EXPECT_NE(msg.find("'builtins.eval'"), std::string::npos) << msg;
}

TEST(Pickle, MaliciousCheckpointsAreRefusedInBothFormats) {
  fs::path dir = temp_dir("bin_malicious");
  write_zip(dir / "pytorch_model.bin", {{"archive/data.pkl", std::string(kOsSystem, sizeof kOsSystem - 1)}});
  std::string msg = error_of([&] { hf::read_torch_bin(dir / "pytorch_model.bin"); });
  EXPECT_NE(msg.find("'os.system'"), std::string::npos) << msg;
  // Legacy: a valid magic number / protocol / sys_info, then an evil state dict.
  std::string legacy = read_file(models_dir() / "bert-legacy" / "pytorch_model.bin").substr(0, 137);
  write_file(dir / "legacy.bin", legacy + std::string(kBuiltinsEval, sizeof kBuiltinsEval - 1));
  msg = error_of([&] { hf::read_torch_bin(dir / "legacy.bin"); });
  EXPECT_NE(msg.find("'builtins.eval'"), std::string::npos) << msg;
}

TEST(Pickle, MalformedStreamsAreErrorsNotCrashes) {
  const std::vector<std::string> bad = {
      "",                    // empty
      "\x80\x02}q\x00(X",    // truncated string length
      "\x80\x02h\x05.",      // memo entry never defined
      "\x80\x02t.",          // TUPLE without MARK
      "\x80\x02\xff.",       // unknown opcode
      "\x80\x02}X\x03\x00\x00\x00" "abcs.",  // SETITEM with a missing value
  };
  for (const auto& b : bad) {
    std::string msg = error_of([&] {
      hf::pickle::load(reinterpret_cast<const uint8_t*>(b.data()), b.size(), nullptr, "bad.pkl");
    });
    EXPECT_NE(msg.find("bad.pkl"), std::string::npos) << "input of " << b.size() << " bytes: " << msg;
  }
}

// Found by tools/fuzz: containers that refer to themselves (memo + SETITEM) must not leak.
TEST(Pickle, SelfReferencingContainersAreFreed) {
  static const char kSelfDict[] = "\x80\x02}q\x00X\x01\x00\x00\x00" "ah\x00s.";  // d = {}; d["a"] = d
  const std::string self_dict(kSelfDict, sizeof kSelfDict - 1);
  std::weak_ptr<hf::pickle::Object> weak;
  {
    auto r = hf::pickle::load(reinterpret_cast<const uint8_t*>(self_dict.data()), self_dict.size(), nullptr, "self.pkl");
    ASSERT_EQ(r.value->kind, hf::pickle::Kind::Dict);
    ASSERT_EQ(r.value->dict.size(), 1u);
    EXPECT_EQ(r.value->dict[0].second, r.value);  // the cycle is real
    weak = r.value;
  }
  EXPECT_TRUE(weak.expired());
}

TEST(Pickle, TensorViewsOutsideTheirStorageAreRejected) {
  // A real data.pkl whose first storage is declared larger than its bytes.
  fs::path dir = temp_dir("bin_view");
  // Rebuild the zip with the storage data/0 cut to 8 bytes.
  std::vector<std::pair<std::string, std::string>> entries;
  auto file = MappedFile::open(models_dir() / "bert" / "pytorch_model.bin");
  hf::ZipArchive zip(file);
  for (const auto& [name, e] : zip.entries()) {
    std::string data(reinterpret_cast<const char*>(e.data), e.size);
    if (name.size() > 7 && name.substr(name.size() - 7) == "/data/0") data = data.substr(0, 8);
    entries.emplace_back(name, data);
  }
  write_zip(dir / "pytorch_model.bin", entries);
  std::string msg = error_of([&] { hf::read_torch_bin(dir / "pytorch_model.bin"); });
  EXPECT_NE(msg.find("larger than its data"), std::string::npos) << msg;
}

TEST(Checkpoint, PrefersSafetensorsAndReadsShards) {
  auto ck = hf::load_checkpoint(models_dir() / "bert");
  EXPECT_EQ(ck.format, "safetensors");
  EXPECT_EQ(ck.files.size(), 1u);

  // Split bert's safetensors into two shards with an index.
  fs::path dir = temp_dir("shards");
  auto all = hf::read_safetensors(models_dir() / "bert" / "model.safetensors");
  std::vector<hf::TensorToWrite> s1, s2;
  std::string weight_map;
  size_t i = 0;
  for (const auto& [name, t] : all) {
    (i++ % 2 ? s2 : s1).push_back({name, t.dtype, t.shape, t.data});
    weight_map += (weight_map.empty() ? "" : ",") + ("\"" + name + "\": \"model-0000" + (i % 2 ? "1" : "2") + "-of-00002.safetensors\"");
  }
  hf::write_safetensors(dir / "model-00001-of-00002.safetensors", s1);
  hf::write_safetensors(dir / "model-00002-of-00002.safetensors", s2);
  write_file(dir / "model.safetensors.index.json", "{\"metadata\": {}, \"weight_map\": {" + weight_map + "}}");
  auto sharded = hf::load_checkpoint(dir);
  EXPECT_EQ(sharded.format, "safetensors, sharded");
  EXPECT_EQ(sharded.files.size(), 2u);
  ASSERT_EQ(sharded.tensors.size(), all.size());
  for (const auto& [name, t] : all) EXPECT_EQ(floats(sharded.tensors.at(name)), floats(t)) << name;

  fs::remove(dir / "model-00002-of-00002.safetensors");
  std::string msg = error_of([&] { hf::load_checkpoint(dir); });
  EXPECT_NE(msg.find("model-00002-of-00002.safetensors' is missing"), std::string::npos) << msg;
}

// A diffusers component's weights (diffusion_pytorch_model.*), and its fp16 variant file when that is all the
// folder has; the plain file wins over the variant, transformers' names over diffusers'.
TEST(Checkpoint, DiffusersComponentsAndFp16Variants) {
  const fs::path dir = temp_dir("diffusers_names");
  const uint16_t half[2] = {0x3c00, 0xc000};  // 1.0, -2.0 in float16
  const float full[2] = {3.0f, 4.0f};
  hf::write_safetensors(dir / "diffusion_pytorch_model.fp16.safetensors", {{"conv_in.weight", DType::F16, {2}, half}});
  auto variant = hf::load_checkpoint(dir);
  ASSERT_EQ(variant.files.size(), 1u);
  EXPECT_EQ(variant.files[0].filename(), "diffusion_pytorch_model.fp16.safetensors");
  EXPECT_EQ(variant.tensors.at("conv_in.weight").dtype, DType::F16);
  EXPECT_EQ(floats(variant.tensors.at("conv_in.weight")), (std::vector<float>{1.0f, -2.0f}));

  hf::write_safetensors(dir / "diffusion_pytorch_model.safetensors", {{"conv_in.weight", DType::F32, {2}, full}});
  auto plain = hf::load_checkpoint(dir);
  EXPECT_EQ(plain.files[0].filename(), "diffusion_pytorch_model.safetensors");
  EXPECT_EQ(floats(plain.tensors.at("conv_in.weight")), (std::vector<float>{3.0f, 4.0f}));

  hf::write_safetensors(dir / "model.safetensors", {{"x", DType::F32, {2}, full}});
  EXPECT_EQ(hf::load_checkpoint(dir).files[0].filename(), "model.safetensors");
}

TEST(Checkpoint, NoWeightsIsAnErrorListingWhatWasExpected) {
  fs::path dir = temp_dir("no_weights");
  std::string msg = error_of([&] { hf::load_checkpoint(dir); });
  EXPECT_NE(msg.find("no weights found"), std::string::npos) << msg;
  EXPECT_NE(msg.find("model.safetensors"), std::string::npos) << msg;
  EXPECT_NE(msg.find("diffusion_pytorch_model.safetensors"), std::string::npos) << msg;
}

TEST(Config, TypedLookupsAndErrors) {
  auto c = hf::Config::parse(R"({"architectures": ["BertModel"], "hidden_size": 32, "layer_norm_eps": 1e-12,
                                  "hidden_act": "gelu", "id2label": {"0": "a", "1": "b", "2": "c"}, "x": null})",
                             "cfg.json");
  EXPECT_EQ(c.architecture(), "BertModel");
  EXPECT_EQ(c.get_int("hidden_size"), 32);
  EXPECT_DOUBLE_EQ(*c.get_double("layer_norm_eps"), 1e-12);
  EXPECT_FALSE(c.has("x"));
  EXPECT_FALSE(c.get_int("missing").has_value());
  EXPECT_EQ(c.object_size("id2label"), 3u);
  std::string msg = error_of([&] { c.get_int("hidden_act"); });
  EXPECT_EQ(msg, "cfg.json: 'hidden_act' must be an integer, got a string");  // the value is not quoted
  msg = error_of([&] { c.require_int("vocab_size"); });
  EXPECT_EQ(msg, "cfg.json: 'vocab_size' is required but missing");
  msg = error_of([] { hf::Config::parse("{not json", "broken.json"); });
  EXPECT_NE(msg.find("broken.json: invalid JSON"), std::string::npos) << msg;
  msg = error_of([] { hf::Config::parse("{}", "empty.json").architecture(); });
  EXPECT_NE(msg.find("'architectures' is missing"), std::string::npos) << msg;
}

}  // namespace
}  // namespace hf2onnx::test
