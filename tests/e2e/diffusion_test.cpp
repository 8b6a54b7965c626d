// Stable Diffusion (issue 14): the sd-tiny pipeline folder (diffusers 0.30.3) exported into Optimum's layout at
// opsets 14 and 17; every component at the fixture's sets a and b against diffusers' reference outputs (1e-4), and
// the guided 3-step DDIM pipeline run end to end through the four ONNX files (tools/ort_sd_pipeline.mjs) against
// diffusers' recorded run (3e-4 on the latents, the fixture README's bound). Weights from fp16 variant files only;
// --quantize (text encoder and UNet INT8 on both CPUs, the VAE left in float); malformed pipeline folders.
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <onnx/onnx_pb.h>

#include "common/test_util.h"
#include "hf/checkpoint.h"
#include "hf/safetensors.h"
#include "models/loader.h"
#include "hf2onnx/export.h"

namespace hf2onnx::test {
namespace {

constexpr double kAtol = 1e-4;
const char* const kParts[] = {"text_encoder", "unet", "vae_encoder", "vae_decoder"};

nlohmann::json read_json(const fs::path& p) { return nlohmann::json::parse(read_file(p)); }

fs::path export_sd(const fs::path& model_dir, const std::string& name, int opset = 17,
                   std::optional<QuantizeOptions> quantize = std::nullopt, bool keep_weight_dtype = false) {
  const fs::path out = temp_dir("sd_" + name);
  ExportOptions opt;
  opt.keep_weight_dtype = keep_weight_dtype;
  opt.model_dir = model_dir;
  opt.out_dir = out / "export";
  opt.opset = opset;
  opt.quantize = quantize;
  opt.report = out / "report.json";
  export_model(opt);
  return out;
}

// Every output of the reference set, by name, from the part's ONNX file in ONNX Runtime: the largest difference.
double max_diff_at(const fs::path& onnx, const fs::path& ref_set, const fs::path& got, const nlohmann::json& outputs,
                   const std::string& what) {
  run_ort(onnx, ref_set, got);
  double worst = 0;
  for (const auto& [name, spec] : outputs.items()) {
    EXPECT_TRUE(fs::exists(got / (name + ".npy"))) << what << ": output " << name << " missing";
    if (!fs::exists(got / (name + ".npy"))) return 1e9;
    Array expected = read_npy(ref_set / (name + ".npy")), actual = read_npy(got / (name + ".npy"));
    EXPECT_EQ(actual.shape, expected.shape) << what << " " << name;
    const double d = max_abs_diff(actual, expected);
    EXPECT_LE(d, kAtol) << what << " output " << name;
    worst = std::max(worst, d);
  }
  return worst;
}

class SdTinyExport : public ::testing::TestWithParam<int> {};

TEST_P(SdTinyExport, EveryComponentMatchesDiffusersAtBothSets) {
  const int opset = GetParam();
  const fs::path fixture = models_dir() / "sd-tiny";
  const fs::path out = export_sd(fixture, "opset" + std::to_string(opset), opset);
  const fs::path e = out / "export";
  // Optimum's layout: one folder per ONNX model with its component's config, and the pipeline's other parts.
  for (const char* part : kParts) {
    EXPECT_TRUE(fs::exists(e / part / "model.onnx")) << part;
    EXPECT_TRUE(fs::exists(e / part / "config.json")) << part;
  }
  EXPECT_EQ(read_file(e / "vae_encoder" / "config.json"), read_file(fixture / "vae" / "config.json"));
  EXPECT_EQ(read_file(e / "model_index.json"), read_file(fixture / "model_index.json"));
  EXPECT_TRUE(fs::exists(e / "scheduler" / "scheduler_config.json"));
  for (const char* f : {"vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"})
    EXPECT_TRUE(fs::exists(e / "tokenizer" / f)) << f;
  EXPECT_FALSE(fs::exists(e / "onnx"));
  EXPECT_FALSE(fs::exists(e / "ref"));  // the fixture's references are not part of the pipeline

  // Names, dtypes and dims as Optimum's exporter declares them (timestep: int64, one per row).
  auto io = [](const onnx::ValueInfoProto& vi) {
    std::string s = vi.name() + ":" + onnx::TensorProto_DataType_Name(vi.type().tensor_type().elem_type());
    for (const auto& d : vi.type().tensor_type().shape().dim()) s += " " + (d.has_dim_param() ? d.dim_param() : std::to_string(d.dim_value()));
    return s;
  };
  auto unet = load_onnx(e / "unet" / "model.onnx");
  ASSERT_EQ(unet.graph().input_size(), 3);
  EXPECT_EQ(io(unet.graph().input(0)), "sample:FLOAT batch_size 4 height width");
  EXPECT_EQ(io(unet.graph().input(1)), "timestep:INT64 batch_size");
  EXPECT_EQ(io(unet.graph().input(2)), "encoder_hidden_states:FLOAT batch_size sequence_length 32");
  EXPECT_EQ(io(unet.graph().output(0)), "out_sample:FLOAT batch_size 4 height width");
  auto text = load_onnx(e / "text_encoder" / "model.onnx");
  ASSERT_EQ(text.graph().input_size(), 1);
  EXPECT_EQ(io(text.graph().input(0)), "input_ids:INT64 batch_size sequence_length");
  EXPECT_EQ(text.graph().output(0).name(), "last_hidden_state");
  EXPECT_EQ(text.graph().output(1).name(), "pooler_output");
  auto enc = load_onnx(e / "vae_encoder" / "model.onnx");
  EXPECT_EQ(io(enc.graph().input(0)), "sample:FLOAT batch_size 3 sample_height sample_width");
  EXPECT_EQ(io(enc.graph().output(0)), "latent_parameters:FLOAT batch_size 8 sample_height / 2 sample_width / 2");
  auto dec = load_onnx(e / "vae_decoder" / "model.onnx");
  EXPECT_EQ(io(dec.graph().input(0)), "latent_sample:FLOAT batch_size 4 height width");
  EXPECT_EQ(io(dec.graph().output(0)), "sample:FLOAT batch_size 3 height * 2 width * 2");

  for (const char* part : kParts) {
    const auto m = read_json(fixture / "ref" / part / "manifest.json");
    for (const std::string set : {"a", "b"}) {
      const double d = max_diff_at(e / part / "model.onnx", fixture / "ref" / part / set,
                                   out / ("ort_" + std::string(part) + "_" + set), m["sets"][set]["outputs"],
                                   std::string(part) + " opset " + std::to_string(opset) + " set " + set);
      std::printf("  %s opset %d set %s: max |ORT - diffusers| = %.2g\n", part, opset, set.c_str(), d);
    }
  }
  // One timestep for the whole batch, as diffusers' ONNX pipeline and Optimum 1.12's feed it (np.array([t])),
  // broadcasts like diffusers' timesteps.expand(batch): the same as t repeated per row.
  {
    const fs::path one = out / "one_timestep", each = out / "each_timestep";
    for (const fs::path& d : {one, each}) {
      fs::create_directories(d);
      for (const char* n : {"sample.npy", "encoder_hidden_states.npy"}) fs::copy_file(fixture / "ref" / "unet" / "a" / n, d / n);
    }
    const int64_t t[2] = {500, 500};
    write_npy(one / "timestep.npy", make_i64({1}, t));
    write_npy(each / "timestep.npy", make_i64({2}, t));
    run_ort({{e / "unet" / "model.onnx", one, one / "out"}, {e / "unet" / "model.onnx", each, each / "out"}});
    EXPECT_EQ(max_abs_diff(read_npy(one / "out" / "out_sample.npy"), read_npy(each / "out" / "out_sample.npy")), 0.0);
  }

  // The verify stage ran on every component and the report names each.
  const auto report = read_json(out / "report.json");
  EXPECT_EQ(report["architecture"], "StableDiffusionPipeline");
  EXPECT_EQ(report["task"], "text-to-image");
  for (const char* c : {"text_encoder", "unet", "vae"}) EXPECT_EQ(report["components"][c]["verification"]["ran"], true) << c;
  EXPECT_EQ(report["components"]["vae"]["graphs"].size(), 2u);

  // The guided DDIM pipeline through the exported files against diffusers' run.
  const auto line = nlohmann::json::parse(
      run_tool_stdout("ort_sd_pipeline.mjs", (e.string() + " " + (fixture / "ref" / "pipeline").string())));
  std::printf("  pipeline opset %d: %s\n", opset, line.dump().c_str());
  EXPECT_EQ(line["ok"], true);
  EXPECT_LE(line["max_abs"]["latents_final"].get<double>(), 3e-4);
  EXPECT_LE(line["max_abs"]["image"].get<double>(), 1e-3);
}

INSTANTIATE_TEST_SUITE_P(Opsets, SdTinyExport, ::testing::Values(14, 17, kMaxOpset),
                         [](const auto& info) { return "opset" + std::to_string(info.param); });

// A pipeline whose components ship only fp16 variant files (diffusion_pytorch_model.fp16.safetensors,
// model.fp16.safetensors) exports as float32 and computes exactly what the same values in a float32 checkpoint do;
// with --keep-weight-dtype, its weights stay float16 and it computes the same again.
// (This copy also names a safety checker, which is left out, and has a feature_extractor folder, which is copied.)
TEST(SdTiny, Fp16VariantFilesExportLikeTheirFloat32Values) {
  const fs::path base = temp_dir("sd_fp16_src");
  const fs::path fp16 = base / "fp16", rounded = base / "rounded";
  for (const fs::path& dst : {fp16, rounded}) fs::copy(models_dir() / "sd-tiny", dst, fs::copy_options::recursive);
  nlohmann::json index = read_json(fp16 / "model_index.json");
  index["safety_checker"] = {"stable_diffusion", "StableDiffusionSafetyChecker"};
  index["feature_extractor"] = {"transformers", "CLIPImageProcessor"};
  write_file(fp16 / "model_index.json", index.dump(2));
  fs::create_directories(fp16 / "feature_extractor");
  write_file(fp16 / "feature_extractor" / "preprocessor_config.json", R"({"crop_size": 224})");
  for (const auto& [folder, file] : std::vector<std::pair<std::string, std::string>>{
           {"text_encoder", "model"}, {"unet", "diffusion_pytorch_model"}, {"vae", "diffusion_pytorch_model"}}) {
    const auto ck = hf::load_checkpoint(models_dir() / "sd-tiny" / folder);
    std::vector<hf::TensorToWrite> halves, floats;
    std::vector<torch::Tensor> keep;
    for (const auto& [key, t] : ck.tensors) {
      torch::Tensor h = to_float_tensor(t).to(torch::kHalf).contiguous();
      torch::Tensor f = h.to(torch::kFloat).contiguous();  // the same values in float32
      keep.push_back(h);
      keep.push_back(f);
      halves.push_back({key, hf::DType::F16, h.sizes().vec(), h.data_ptr()});
      floats.push_back({key, hf::DType::F32, f.sizes().vec(), f.data_ptr()});
    }
    fs::remove(fp16 / folder / (file + ".safetensors"));
    hf::write_safetensors(fp16 / folder / (file + ".fp16.safetensors"), halves);
    hf::write_safetensors(rounded / folder / (file + ".safetensors"), floats);
  }
  const fs::path a = export_sd(fp16, "fp16"), b = export_sd(rounded, "rounded");
  const fs::path c = export_sd(fp16, "fp16_kept", 17, std::nullopt, /*keep_weight_dtype=*/true);
  EXPECT_EQ(read_file(a / "export" / "feature_extractor" / "preprocessor_config.json"), R"({"crop_size": 224})");
  EXPECT_FALSE(fs::exists(a / "export" / "safety_checker"));
  const auto report = read_json(a / "report.json");
  EXPECT_EQ(report["components"]["unet"]["checkpoint"]["bytes"].get<uint64_t>() * 2,
            read_json(b / "report.json")["components"]["unet"]["checkpoint"]["bytes"].get<uint64_t>());
  for (const char* part : kParts) {
    const fs::path set = models_dir() / "sd-tiny" / "ref" / part / "b";
    run_ort(a / "export" / part / "model.onnx", set, a / ("ort_" + std::string(part)));
    run_ort(b / "export" / part / "model.onnx", set, b / ("ort_" + std::string(part)));
    for (const auto& entry : fs::directory_iterator(a / ("ort_" + std::string(part)))) {
      Array x = read_npy(entry.path()), y = read_npy(b / ("ort_" + std::string(part)) / entry.path().filename());
      EXPECT_LE(max_abs_diff(x, y), 1e-6) << part << " " << entry.path().filename();
    }
    const onnx::ModelProto m = load_onnx(a / "export" / part / "model.onnx");
    for (const auto& init : m.graph().initializer()) EXPECT_NE(init.data_type(), onnx::TensorProto::FLOAT16) << part << " " << init.name();
    // --keep-weight-dtype: the weights stay float16 (convolutions included), and the outputs are the same.
    run_ort(c / "export" / part / "model.onnx", set, c / ("ort_" + std::string(part)));
    for (const auto& entry : fs::directory_iterator(c / ("ort_" + std::string(part)))) {
      Array x = read_npy(entry.path()), y = read_npy(b / ("ort_" + std::string(part)) / entry.path().filename());
      EXPECT_EQ(max_abs_diff(x, y), 0.0) << part << " " << entry.path().filename() << " (kept float16)";
    }
    int halves = 0, weights = 0;
    const onnx::ModelProto k = load_onnx(c / "export" / part / "model.onnx");
    for (const auto& init : k.graph().initializer()) {
      weights += init.dims_size() >= 2 && init.data_type() != onnx::TensorProto::INT64;
      halves += init.dims_size() >= 2 && init.data_type() == onnx::TensorProto::FLOAT16;
    }
    EXPECT_EQ(halves, weights) << part;
    EXPECT_GT(halves, 0) << part;
  }
}

// --quantize: INT8 twins of the text encoder and the UNet (their MatMuls; the convolutions stay float), none of
// the VAE; each twin against its FP32 file on both CPUs, and the guided pipeline on the twins.
TEST(SdTiny, QuantizedTextEncoderAndUnetOnBothCpus) {
  const fs::path out = export_sd(models_dir() / "sd-tiny", "int8", 17, QuantizeOptions{});
  const fs::path e = out / "export";
  for (const char* part : {"text_encoder", "unet"}) {
    ASSERT_TRUE(fs::exists(e / part / "model_quantized.onnx")) << part;
    int integer = 0;
    const onnx::ModelProto q = load_onnx(e / part / "model_quantized.onnx");
    for (const auto& n : q.graph().node()) integer += n.op_type() == "MatMulInteger";
    EXPECT_GT(integer, 0) << part;
  }
  EXPECT_FALSE(fs::exists(e / "vae_encoder" / "model_quantized.onnx"));
  EXPECT_FALSE(fs::exists(e / "vae_decoder" / "model_quantized.onnx"));
  const auto report = read_json(out / "report.json");
  EXPECT_EQ(report["components"]["unet"]["quantized_files"].size(), 1u);
  EXPECT_FALSE(report["components"]["vae"].contains("quantized_files"));
  for (OrtCpu cpu : int8_test_cpus()) {
    for (const char* part : {"text_encoder", "unet"}) {
      const fs::path set = models_dir() / "sd-tiny" / "ref" / part / "b";
      const fs::path f = out / (std::string("f_") + part + cpu_name(cpu)), q = out / (std::string("q_") + part + cpu_name(cpu));
      run_ort({{e / part / "model.onnx", set, f}, {e / part / "model_quantized.onnx", set, q}}, cpu);
      const std::string first = std::string(part) == "unet" ? "out_sample" : "last_hidden_state";
      const double c = cosine(read_npy(f / (first + ".npy")), read_npy(q / (first + ".npy")));
      std::printf("  %s INT8 vs FP32 on %s: cosine %.5f\n", part, cpu_name(cpu), c);
      EXPECT_GE(c, 0.99) << part << " on " << cpu_name(cpu);
    }
  }
  const auto line = nlohmann::json::parse(run_tool_stdout(
      "ort_sd_pipeline.mjs", e.string() + " " + (models_dir() / "sd-tiny" / "ref" / "pipeline").string() + " --quantized"));
  std::printf("  pipeline on the INT8 twins: %s\n", line.dump().c_str());
  EXPECT_GE(line["cosine"]["latents_final"].get<double>(), 0.99);

  // `verify` and `inspect` understand the pipeline folder.
  const CliResult v = run_cli("verify " + e.string() + " " + (models_dir() / "sd-tiny").string());
  EXPECT_EQ(v.exit_code, 0) << v.err;
  for (const char* c : {"text_encoder:", "unet:", "vae_encoder:", "model_quantized.onnx"}) EXPECT_NE(v.err.find(c), std::string::npos) << c << "\n" << v.err;
  const CliResult self = run_cli("verify " + e.string());
  EXPECT_EQ(self.exit_code, 0) << self.err;
  const CliResult i = run_cli("inspect " + e.string());
  EXPECT_EQ(i.exit_code, 0) << i.err;
  for (const char* f : {"== text_encoder/model.onnx", "== unet/model_quantized.onnx", "== vae_decoder/model.onnx"})
    EXPECT_NE(i.out.find(f), std::string::npos) << f << "\n" << i.out;
  const CliResult ic = run_cli("inspect " + (models_dir() / "sd-tiny").string());
  EXPECT_EQ(ic.exit_code, 0) << ic.err;
  EXPECT_NE(ic.out.find("UNet2DConditionModel"), std::string::npos) << ic.out;
}

// Malformed pipeline folders: one error line naming model_index.json and the key, exit 1, nothing written.
TEST(SdTiny, MalformedPipelineFoldersAreRefusedByName) {
  const fs::path dir = copy_fixture("sd-tiny", "sd_bad");
  const fs::path out = temp_dir("sd_bad_out") / "export";
  const std::string original = read_file(dir / "model_index.json");
  auto attempt = [&](const std::function<void(nlohmann::json&)>& edit) {
    nlohmann::json j = nlohmann::json::parse(original);
    edit(j);
    write_file(dir / "model_index.json", j.dump(2));
    return run_cli("export " + dir.string() + " " + out.string());
  };
  struct Case {
    std::string what, needle;
    std::function<void(nlohmann::json&)> edit;
  };
  const std::vector<Case> cases = {
      {"SDXL's second text encoder", "'text_encoder_2' is a component this exporter does not support",
       [](nlohmann::json& j) { j["text_encoder_2"] = {"transformers", "CLIPTextModelWithProjection"}; }},
      {"no UNet", "'unet' is missing", [](nlohmann::json& j) { j.erase("unet"); }},
      {"another UNet class", "'unet' must be [\"diffusers\", \"UNet2DConditionModel\"]",
       [](nlohmann::json& j) { j["unet"] = {"diffusers", "UNetSpatioTemporalConditionModel"}; }},
  };
  for (const auto& c : cases) {
    const CliResult r = attempt(c.edit);
    EXPECT_EQ(r.exit_code, 1) << c.what;
    EXPECT_NE(r.err.find("model_index.json"), std::string::npos) << c.what << ": " << r.err;
    EXPECT_NE(r.err.find(c.needle), std::string::npos) << c.what << ": " << r.err;
    EXPECT_FALSE(fs::exists(out)) << c.what;
  }
  // A component's config with an option the modules do not implement: named with its file and key.
  write_file(dir / "model_index.json", original);
  nlohmann::json unet = read_json(dir / "unet" / "config.json");
  unet["class_embed_type"] = "timestep";
  write_file(dir / "unet" / "config.json", unet.dump(2));
  const CliResult r = run_cli("export " + dir.string() + " " + out.string());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("unet/config.json"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("class_embed_type"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(out));
}

}  // namespace
}  // namespace hf2onnx::test
