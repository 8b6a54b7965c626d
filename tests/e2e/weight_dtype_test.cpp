// export --keep-weight-dtype: bfloat16 / float16 checkpoints keep their weights 16-bit in the file, read through
// Cast (and Transpose for Linear weights). The model must compute exactly what the float32 export of the same
// checkpoint computes, in ONNX Runtime and in transformers.js, and its INT8 twin must equal that export's twin.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "common/model_util.h"
#include "common/test_util.h"
#include "hf/checkpoint.h"
#include "hf/safetensors.h"
#include "hf2onnx/export.h"
#include "models/loader.h"

namespace hf2onnx::test {
namespace {

// `fixture`'s config files and its weights rounded to `dtype` (torch's rounding) in one model.safetensors; the
// first value of `nan_key` made NaN.
fs::path make_16bit_copy(const std::string& fixture, torch::ScalarType dtype, const std::string& name,
                         const std::string& nan_key = "") {
  const fs::path dst = temp_dir(name);
  for (const char* f : {"config.json", "generation_config.json"})
    if (fs::exists(models_dir() / fixture / f)) fs::copy_file(models_dir() / fixture / f, dst / f);
  const auto ck = hf::load_checkpoint(models_dir() / fixture);
  std::vector<hf::TensorToWrite> tensors;
  std::vector<torch::Tensor> keep;
  for (const auto& [key, t] : ck.tensors) {
    keep.push_back(to_float_tensor(t).to(dtype).contiguous());
    if (key == nan_key) keep.back().view({-1})[0] = std::nanf("");
    tensors.push_back({key, dtype == torch::kBFloat16 ? hf::DType::BF16 : hf::DType::F16, keep.back().sizes().vec(),
                       keep.back().data_ptr()});
  }
  hf::write_safetensors(dst / "model.safetensors", tensors);
  return dst;
}

fs::path export_16bit(const fs::path& src, const fs::path& out, bool keep) {
  ExportOptions opt;
  opt.model_dir = src;
  opt.out_dir = out;
  opt.report = out.string() + ".report.json";
  opt.keep_weight_dtype = keep;
  opt.quantize = QuantizeOptions{};  // the verify stage (on) checks both files against libtorch and FP32
  export_model(opt);
  return out / "onnx";
}

// The bytes of the initializers named after checkpoint tensors.
uint64_t weight_bytes(const fs::path& model, const fs::path& src) {
  const hf::Checkpoint ck = hf::load_checkpoint(src);
  const onnx::ModelProto m = load_onnx(model);
  uint64_t n = 0;
  for (const auto& init : m.graph().initializer())
    if (ck.tensors.count(init.name())) n += init.raw_data().size();
  return n;
}

// Every checkpoint tensor the graph uses is a 16-bit initializer of `type`, read only by a Cast to float (checked
// in graphs without subgraphs); returns how many.
int expect_kept(const fs::path& model, const fs::path& src, int32_t type, bool check_readers = true) {
  const onnx::ModelProto m = load_onnx(model);
  std::map<std::string, int32_t> types;
  for (const auto& init : m.graph().initializer()) types[init.name()] = init.data_type();
  std::map<std::string, std::set<std::string>> readers;  // initializer → op types reading it
  for (const auto& n : m.graph().node())
    for (const auto& i : n.input())
      if (types.count(i)) readers[i].insert(n.op_type());
  int kept = 0;
  const hf::Checkpoint ck = hf::load_checkpoint(src);
  for (const auto& [key, t] : ck.tensors) {
    if (!types.count(key)) continue;  // a weight this graph does not use
    EXPECT_EQ(types[key], type) << model << " " << key;
    if (check_readers) {
      EXPECT_EQ(readers[key], (std::set<std::string>{"Cast"})) << model << " " << key;
    }
    kept += types[key] == type;
  }
  EXPECT_GT(kept, 0) << model;
  return kept;
}

struct Decoder {
  std::string fixture;
  torch::ScalarType dtype;
  int layers, kv_heads, head_dim;
};

void PrintTo(const Decoder& d, std::ostream* os) { *os << d.fixture; }

class KeepWeightDtypeDecoder : public ::testing::TestWithParam<Decoder> {};

// Llama (untied lm_head, bfloat16) and Qwen2 (tied: the embedding is read by Gather and, transposed, by the head;
// float16).
TEST_P(KeepWeightDtypeDecoder, ComputesExactlyWhatTheFloat32ExportComputes) {
  const Decoder& d = GetParam();
  const std::string tag = d.fixture + (d.dtype == torch::kBFloat16 ? "_bf16" : "_f16");
  const fs::path src = make_16bit_copy(d.fixture, d.dtype, "keep_src_" + tag), dir = temp_dir("keep_" + tag);
  const fs::path f32 = export_16bit(src, dir / "float", false), kept = export_16bit(src, dir / "kept", true);

  const int32_t type = d.dtype == torch::kBFloat16 ? onnx::TensorProto::BFLOAT16 : onnx::TensorProto::FLOAT16;
  const int kept_count = expect_kept(kept / "model.onnx", src, type);
  // The report says how many (the float32 export: none).
  auto report = [](const fs::path& p) { return nlohmann::json::parse(read_file(p))["checkpoint"]["weights_kept_16bit"]; };
  EXPECT_EQ(report(dir / "kept.report.json"), kept_count);
  EXPECT_EQ(report(dir / "float.report.json"), 0);
  EXPECT_EQ(weight_bytes(kept / "model.onnx", src) * 2, weight_bytes(f32 / "model.onnx", src));

  // Same logits at both shapes, FP32 and INT8 (the quantizer read the 16-bit weights through Cast and Transpose).
  for (const std::string set : {"a", "b"}) {
    write_first_step_inputs(models_dir() / d.fixture / "ref" / set, dir / ("in_" + set), d.layers, d.kv_heads, d.head_dim);
    for (const char* file : {"model", "model_quantized"}) {
      for (const auto& [name, folder] : {std::pair{"float", f32}, std::pair{"kept", kept}})
        run_ort(folder / (std::string(file) + ".onnx"), dir / ("in_" + set), dir / (std::string(name) + file + set));
      const Array a = read_npy(dir / ("float" + std::string(file) + set) / "logits.npy");
      const Array b = read_npy(dir / ("kept" + std::string(file) + set) / "logits.npy");
      EXPECT_EQ(max_abs_diff(a, b), 0.0) << file << " set " << set;
    }
  }
  std::map<std::string, int> ops_f32, ops_kept;
  const onnx::ModelProto q_f32 = load_onnx(f32 / "model_quantized.onnx"), q_kept = load_onnx(kept / "model_quantized.onnx");
  for (const auto& n : q_f32.graph().node()) ops_f32[n.op_type()]++;
  for (const auto& n : q_kept.graph().node()) ops_kept[n.op_type()]++;
  EXPECT_EQ(ops_kept["MatMulInteger"], ops_f32["MatMulInteger"]);
  EXPECT_EQ(ops_kept["DequantizeLinear"], ops_f32["DequantizeLinear"]);  // the embedding table
  EXPECT_EQ(ops_kept["Transpose"], ops_f32["Transpose"]);  // no Transpose of a quantized weight left behind

  // transformers.js generates with the kept folder what ONNX Runtime generates with the float32 one.
  const fs::path prompt = models_dir() / d.fixture / "ref" / "generate";
  const std::string cache = " --cache " + std::to_string(d.kv_heads) + "," + std::to_string(d.head_dim);
  run_tool("ort_generate.mjs", "'" + (f32 / "model.onnx").string() + "' '" + prompt.string() + "' 10 '" +
                                   (dir / "ort.npy").string() + "'" + cache);
  run_tool("tjs_generate.mjs", "'" + (dir / "kept").string() + "' '" + prompt.string() + "' 10 '" +
                                   (dir / "tjs.npy").string() + "'");
  EXPECT_EQ(read_npy(dir / "tjs.npy").bytes, read_npy(dir / "ort.npy").bytes);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, KeepWeightDtypeDecoder,
                         ::testing::Values(Decoder{"llama", torch::kBFloat16, 2, 4, 8}, Decoder{"qwen2", torch::kHalf, 2, 2, 8}),
                         [](const auto& info) { return info.param.fixture; });

// BART in bfloat16: every file, the merged decoder included (its branches read the outer Casts' values), is 16-bit
// and generates what the float32 export generates, FP32 and INT8.
TEST(KeepWeightDtype, Seq2SeqFilesAndTheMergedDecoder) {
  const fs::path src = make_16bit_copy("bart", torch::kBFloat16, "keep_src_bart"), dir = temp_dir("keep_bart");
  const fs::path f32 = export_16bit(src, dir / "float", false), kept = export_16bit(src, dir / "kept", true);
  for (const char* f : {"encoder_model", "decoder_model", "decoder_with_past_model", "decoder_model_merged"}) {
    const fs::path file = kept / (std::string(f) + ".onnx");
    expect_kept(file, src, onnx::TensorProto::BFLOAT16, std::string(f) != "decoder_model_merged");
    EXPECT_EQ(weight_bytes(file, src) * 2, weight_bytes(f32 / (std::string(f) + ".onnx"), src)) << f;
  }
  const fs::path gen = models_dir() / "bart" / "ref" / "generate";
  for (const std::string flags : {" --merged", " --merged --suffix _quantized", ""}) {
    for (const auto& [name, folder] : {std::pair{"float", f32}, std::pair{"kept", kept}})
      run_tool("ort_seq2seq.mjs", folder.string() + " " + gen.string() + " 8 " + (dir / (std::string(name) + ".npy")).string() +
                                      " --start 2 --cache 4,8" + flags);
    EXPECT_EQ(read_npy(dir / "kept.npy").bytes, read_npy(dir / "float.npy").bytes) << flags;
  }
}

// A NaN in a kept weight is named in a warning, as in a converted one.
TEST(KeepWeightDtype, NonFiniteSixteenBitWeightsAreNamedInAWarning) {
  for (const auto dtype : {torch::kBFloat16, torch::kHalf}) {
    const fs::path src = make_16bit_copy("bert-seqcls", dtype, "keep_nan_src", "classifier.weight");
    auto r = run_cli("export --keep-weight-dtype --no-verify '" + src.string() + "' '" + (temp_dir("keep_nan") / "out").string() + "'");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find((src / "model.safetensors").string() + ": weight 'classifier.weight' has 1 NaN or infinite value"),
              std::string::npos) << r.err;
  }
}

// hf2onnx batch passes "keep_weight_dtype" on to the export.
TEST(KeepWeightDtype, BatchManifestKey) {
  const fs::path src = make_16bit_copy("bert", torch::kBFloat16, "keep_batch_src"), dir = temp_dir("keep_batch");
  write_file(dir / "m.json", nlohmann::json({{"models", {{{"model", src.string()}, {"out", "kept"}, {"keep_weight_dtype", true}},
                                                         {{"model", src.string()}, {"out", "float"}}}}}).dump());
  auto r = run_cli("batch '" + (dir / "m.json").string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_kept(dir / "kept" / "onnx" / "model.onnx", src, onnx::TensorProto::BFLOAT16);
  const onnx::ModelProto f = load_onnx(dir / "float" / "onnx" / "model.onnx");
  for (const auto& init : f.graph().initializer()) EXPECT_NE(init.data_type(), onnx::TensorProto::BFLOAT16) << init.name();
}

// A float32 checkpoint has nothing to keep: the option changes nothing.
TEST(KeepWeightDtype, Float32CheckpointsAreWrittenAsWithoutIt) {
  const fs::path dir = temp_dir("keep_f32");
  for (const bool keep : {false, true}) {
    ExportOptions opt;
    opt.model_dir = models_dir() / "bert";
    opt.out_dir = dir / (keep ? "kept" : "float");
    opt.keep_weight_dtype = keep;
    opt.verify.enabled = false;
    export_model(opt);
  }
  EXPECT_EQ(read_file(dir / "kept" / "onnx" / "model.onnx"), read_file(dir / "float" / "onnx" / "model.onnx"));
}

}  // namespace
}  // namespace hf2onnx::test
