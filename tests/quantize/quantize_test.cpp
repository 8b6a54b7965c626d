// Tier 4: the quantization pass — structure (op counts, nothing float left with a constant weight,
// activation×activation MatMuls untouched, checker, loads in ORT), numerics against the FP32 model in
// ONNX Runtime for every fixture, options, a foreign model with Gemm(transB=1), and bad input.
#include <fstream>
#include <map>
#include <random>
#include <set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>

#include "common/test_util.h"
#include "hf2onnx/error.h"
#include "hf2onnx/export.h"
#include "hf2onnx/quantize.h"
#include "quantize/quant_math.h"

namespace hf2onnx::test {
namespace {

std::map<std::string, int> op_counts(const onnx::ModelProto& m) {
  std::map<std::string, int> c;
  for (const auto& n : m.graph().node()) c[n.op_type()]++;
  return c;
}

std::set<std::string> initializer_names(const onnx::ModelProto& m) {
  std::set<std::string> s;
  for (const auto& t : m.graph().initializer()) s.insert(t.name());
  return s;
}

// No float MatMul / Gemm with a constant B remains.
void expect_no_float_weight_matmul(const onnx::ModelProto& m) {
  auto inits = initializer_names(m);
  for (const auto& n : m.graph().node()) {
    if (n.op_type() == "MatMul") {
      EXPECT_FALSE(inits.count(n.input(1))) << "float MatMul with constant " << n.input(1);
    }
    if (n.op_type() == "Gemm") {
      EXPECT_FALSE(inits.count(n.input(1))) << "float Gemm with constant " << n.input(1);
    }
  }
}

// The avx2 form (--target avx2, or portable with --weight-type int8): no two neighbouring int8 weights
// along K of any MatMulInteger can make an AVX2 vpmaddubsw pair sum saturate (255 * (|w1| + |w2|) <= 32767).
// Returns how many weights were checked.
int expect_pair_sums_within_limit(const onnx::ModelProto& m) {
  std::map<std::string, const onnx::TensorProto*> inits;
  for (const auto& t : m.graph().initializer()) inits[t.name()] = &t;
  int checked = 0;
  for (const auto& n : m.graph().node()) {
    if (n.op_type() != "MatMulInteger" || !inits.count(n.input(1))) continue;
    const onnx::TensorProto& w = *inits[n.input(1)];
    EXPECT_EQ(w.data_type(), onnx::TensorProto::INT8) << w.name();
    if (w.data_type() != onnx::TensorProto::INT8) continue;
    EXPECT_EQ(w.dims_size(), 2);
    const auto* q = reinterpret_cast<const int8_t*>(w.raw_data().data());
    EXPECT_EQ(static_cast<int64_t>(w.raw_data().size()), w.dims(0) * w.dims(1));
    const int worst = quant::max_pair_sum(q, w.dims(0), w.dims(1));
    EXPECT_LE(255 * worst, 32767) << w.name() << ": neighbours along K sum to " << worst;
    ++checked;
  }
  return checked;
}

// The portable form (the default): every MatMulInteger weight is uint8, which ONNX Runtime multiplies
// with u8 activations by widening both to 16 bits (VPMADDWD: 2 * 255 * 255 fits int32) or with dot-product
// instructions that accumulate in 32 bits — never through a saturating int16 pair sum. Returns the count.
int expect_uint8_weights(const onnx::ModelProto& m) {
  std::set<std::string> inits = initializer_names(m);
  int checked = 0;
  for (const auto& n : m.graph().node()) {
    if (n.op_type() != "MatMulInteger" || !inits.count(n.input(1))) continue;
    for (const auto& t : m.graph().initializer())
      if (t.name() == n.input(1)) {
        EXPECT_EQ(t.data_type(), onnx::TensorProto::UINT8) << t.name();
        ++checked;
      }
  }
  return checked;
}

fs::path export_fixture(const std::string& fixture, const fs::path& out, std::optional<QuantizeOptions> q = QuantizeOptions{}) {
  ExportOptions opt;
  opt.model_dir = models_dir() / fixture;
  opt.out_dir = out;
  opt.quantize = q;
  export_model(opt);
  return out;
}

struct QuantCase {
  std::string fixture;
  bool per_channel;
  std::string target;
};

void PrintTo(const QuantCase& c, std::ostream* os) {
  *os << c.fixture << (c.per_channel ? " per-channel" : "") << " --target " << c.target;
}

class QuantizedFixture : public ::testing::TestWithParam<QuantCase> {};

// Cosine of every float output of the INT8 twin with FP32, measured on both CPUs with the default target
// (portable: uint8 weights), with --per-channel, and with --target avx2 (pair-limited int8). Observed on a VNNI
// CPU and the emulated AVX2 one alike: >= 0.99966 portable, >= 0.99974 portable per-channel, >= 0.99948 avx2;
// a full-range int8 model on the AVX2 CPU drops to 0.974 (per-channel bert-seqcls), which the bound must catch.
constexpr double kEncoderMinCosine = 0.998;
// Native and emulated-AVX2 INT8 outputs differ only by float rounding in the non-integer kernels
// (observed: exactly 0 on these fixtures, VNNI native vs emulated AVX2; a saturating pair moves logits by ~1e-1).
constexpr double kCrossCpuMaxDiff = 1e-4;

TEST_P(QuantizedFixture, StructureAndNumericsAgainstFp32OnBothCpus) {
  const auto [fixture, per_channel, target] = GetParam();
  QuantizeOptions q;
  q.per_channel = per_channel;
  q.target = target;
  fs::path out = export_fixture(fixture, temp_dir("q_" + fixture) / "onnx", q);
  ASSERT_TRUE(fs::exists(out / "onnx" / "model_quantized.onnx"));
  auto fp32 = load_onnx(out / "onnx" / "model.onnx");
  auto int8 = load_onnx(out / "onnx" / "model_quantized.onnx");
  onnx::checker::check_model(int8);
  expect_no_float_weight_matmul(int8);
  if (target == "portable") {
    EXPECT_GT(expect_uint8_weights(int8), 0);
  } else {
    EXPECT_GT(expect_pair_sums_within_limit(int8), 0);
  }

  auto before = op_counts(fp32), after = op_counts(int8);
  // Every MatMul with a constant weight became MatMulInteger; the attention MatMuls (2 per layer) stay.
  const int layers = 2, weight_matmuls = before["MatMul"] - 2 * layers;
  EXPECT_EQ(after["MatMulInteger"], weight_matmuls);
  EXPECT_EQ(after["MatMul"], 2 * layers);
  EXPECT_EQ(after["Cast"] - before["Cast"], weight_matmuls);
  EXPECT_GE(after["DequantizeLinear"], 2);  // word + position embedding tables
  // One DynamicQuantizeLinear per activation: fewer than the MatMulIntegers (q, k, v share one).
  EXPECT_LT(after["DynamicQuantizeLinear"], after["MatMulInteger"]);
  EXPECT_LT(fs::file_size(out / "onnx" / "model_quantized.onnx"), fs::file_size(out / "onnx" / "model.onnx") / 2);

  for (const std::string set : {"a", "b"}) {
    const fs::path in = models_dir() / fixture / "ref" / set;
    run_ort({{out / "onnx" / "model.onnx", in, out / ("fp32_" + set)}, {out / "onnx" / "model_quantized.onnx", in, out / ("int8_" + set)}});
    run_ort(out / "onnx" / "model_quantized.onnx", in, out / ("int8_avx2_" + set), OrtCpu::EmulatedAvx2);
    for (const auto& e : fs::directory_iterator(out / ("fp32_" + set))) {
      Array f = read_npy(e.path());
      for (const std::string cpu : {"", "avx2_"}) {
        Array i8 = read_npy(out / ("int8_" + cpu + set) / e.path().filename());
        const double cos = cosine(f, i8);
        EXPECT_GE(cos, kEncoderMinCosine) << fixture << " " << e.path().filename() << " set " << set << " " << cpu;
        std::printf("[ metrics  ] %s%s --target %s %s set %s %s: cosine %.5f, argmax agreement %.3f\n", fixture.c_str(),
                    per_channel ? " per-channel" : "", target.c_str(), e.path().filename().c_str(), set.c_str(),
                    cpu.empty() ? "native" : "emulated AVX2", cos, argmax_agreement(f, i8));
      }
      const double cross = max_abs_diff(read_npy(out / ("int8_" + set) / e.path().filename()),
                                        read_npy(out / ("int8_avx2_" + set) / e.path().filename()));
      EXPECT_LE(cross, kCrossCpuMaxDiff) << fixture << " " << e.path().filename() << ": INT8 differs between CPUs";
      std::printf("[ metrics  ] %s%s --target %s %s set %s: INT8 native vs emulated AVX2 max diff %.2e\n",
                  fixture.c_str(), per_channel ? " per-channel" : "", target.c_str(), e.path().filename().c_str(), set.c_str(), cross);
    }
  }
}

// Image and audio encoders (ViT, CLIP's vision tower, Wav2Vec2): every Linear (6 per layer and the head:
// classifier or projection; Wav2Vec2 also its feature projection) becomes MatMulInteger; convolutions (the patch
// conv; wav2vec2's 7 feature convs and the positional conv) and learned positions stay float. The head's output
// against FP32 on both CPUs at the reference inputs.
TEST(Quantize, ImageAndAudioEncodersOnBothCpus) {
  struct Case {
    std::string fixture, output;
    int matmul_integer, convs;
  };
  for (const auto& [fixture, output, matmul_integer, convs] :
       std::vector<Case>{{"vit", "logits", 6 * 2 + 1, 1}, {"clip-vision", "image_embeds", 6 * 2 + 1, 1}, {"wav2vec2", "logits", 6 * 2 + 2, 8}}) {
    fs::path out = export_fixture(fixture, temp_dir("q_" + fixture) / "export");
    auto int8 = load_onnx(out / "onnx" / "model_quantized.onnx");
    expect_no_float_weight_matmul(int8);
    auto after = op_counts(int8);
    EXPECT_EQ(after["MatMulInteger"], matmul_integer) << fixture;
    EXPECT_EQ(after["Conv"], convs) << fixture;
    for (const std::string set : {"a", "b"}) {
      const fs::path in = models_dir() / fixture / "ref" / set;
      run_ort({{out / "onnx" / "model.onnx", in, out / ("fp32_" + set)}, {out / "onnx" / "model_quantized.onnx", in, out / ("int8_" + set)}});
      run_ort(out / "onnx" / "model_quantized.onnx", in, out / ("int8_avx2_" + set), OrtCpu::EmulatedAvx2);
      const Array f = read_npy(out / ("fp32_" + set) / (output + ".npy"));
      for (const std::string cpu : {"", "avx2_"}) {
        const Array i8 = read_npy(out / ("int8_" + cpu + set) / (output + ".npy"));
        const double cos = cosine(f, i8);
        EXPECT_GE(cos, kEncoderMinCosine) << fixture << " set " << set << " " << cpu;
        std::printf("[ metrics  ] %s INT8 %s set %s %s: cosine %.5f, argmax agreement %.3f\n", fixture.c_str(), output.c_str(),
                    set.c_str(), cpu.empty() ? "native" : "emulated AVX2", cos, argmax_agreement(f, i8));
      }
      EXPECT_LE(max_abs_diff(read_npy(out / ("int8_" + set) / (output + ".npy")),
                             read_npy(out / ("int8_avx2_" + set) / (output + ".npy"))),
                kCrossCpuMaxDiff) << fixture;
    }
  }
}

std::vector<QuantCase> quant_cases() {
  std::vector<QuantCase> c;
  for (const char* f : {"bert", "bert-seqcls", "bert-legacy", "distilbert", "roberta", "xlm-roberta", "clip-text"}) {
    for (bool pc : {false, true}) c.push_back({f, pc, "portable"});
    c.push_back({f, false, "avx2"});
  }
  return c;
}
INSTANTIATE_TEST_SUITE_P(Fixtures, QuantizedFixture, ::testing::ValuesIn(quant_cases()), [](const auto& info) {
  std::string n = info.param.fixture + (info.param.per_channel ? "_per_channel" : "") +
                  (info.param.target == "portable" ? "" : "_" + info.param.target);
  for (auto& c : n)
    if (!isalnum(static_cast<unsigned char>(c))) c = '_';
  return n;
});

// The emulated AVX2 CPU really runs the saturating kernel: the full-range form (--target avx512-vnni)
// loses accuracy there and the portable form does not. Exactness of that form natively is asserted only on
// a CPU with VNNI, where it holds.
TEST(Quantize, TargetsOnAvx2AndVnniCpus) {
  fs::path dir = temp_dir("q_targets");
  fs::path fp32 = export_fixture("bert-seqcls", dir / "fp32", std::nullopt) / "onnx" / "model.onnx";
  QuantizeOptions vnni;
  vnni.target = "avx512-vnni";
  vnni.per_channel = true;
  quantize_file(fp32, dir / "vnni.onnx", vnni);
  QuantizeOptions portable;
  portable.per_channel = true;
  quantize_file(fp32, dir / "portable.onnx", portable);
  QuantizeOptions avx2 = portable;
  avx2.target = "avx2";
  quantize_file(fp32, dir / "avx2.onnx", avx2);
  QuantizeOptions portable_int8 = portable;
  portable_int8.weight_type = "int8";
  quantize_file(fp32, dir / "portable_int8.onnx", portable_int8);
  EXPECT_EQ(read_file(dir / "avx2.onnx"), read_file(dir / "portable_int8.onnx"));  // the same form, by definition
  EXPECT_GT(expect_uint8_weights(load_onnx(dir / "portable.onnx")), 0);
  EXPECT_GT(expect_pair_sums_within_limit(load_onnx(dir / "avx2.onnx")), 0);
  const fs::path in = models_dir() / "bert-seqcls" / "ref" / "b";
  run_ort({{fp32, in, dir / "o_fp32"}, {dir / "vnni.onnx", in, dir / "o_vnni"}, {dir / "portable.onnx", in, dir / "o_portable"},
           {dir / "avx2.onnx", in, dir / "o_avx2"}});
  run_ort({{dir / "vnni.onnx", in, dir / "o_vnni_avx2"}, {dir / "portable.onnx", in, dir / "o_portable_avx2"},
           {dir / "avx2.onnx", in, dir / "o_avx2_avx2"}},
          OrtCpu::EmulatedAvx2);
  Array f = read_npy(dir / "o_fp32" / "logits.npy");
  const double vnni_avx2 = cosine(f, read_npy(dir / "o_vnni_avx2" / "logits.npy"));
  const double portable_avx2 = cosine(f, read_npy(dir / "o_portable_avx2" / "logits.npy"));
  const double portable_native = cosine(f, read_npy(dir / "o_portable" / "logits.npy"));
  const double vnni_native = cosine(f, read_npy(dir / "o_vnni" / "logits.npy"));
  std::printf("[ metrics  ] bert-seqcls per-channel logits cosine: avx512-vnni form %.5f native (%s), %.5f emulated AVX2; "
              "portable %.5f native, %.5f emulated AVX2\n", vnni_native, cpu_summary().c_str(), vnni_avx2,
              portable_native, portable_avx2);
  const double avx2_avx2 = cosine(f, read_npy(dir / "o_avx2_avx2" / "logits.npy"));
  const double avx2_native = cosine(f, read_npy(dir / "o_avx2" / "logits.npy"));
  std::printf("[ metrics  ] bert-seqcls per-channel logits cosine: --target avx2 %.5f native, %.5f emulated AVX2\n",
              avx2_native, avx2_avx2);
  EXPECT_GE(portable_avx2, kEncoderMinCosine);
  EXPECT_GE(portable_native, kEncoderMinCosine);
  EXPECT_GE(avx2_avx2, kEncoderMinCosine);
  EXPECT_GE(avx2_native, kEncoderMinCosine);
  EXPECT_LT(vnni_avx2, kEncoderMinCosine) << "the emulated AVX2 CPU did not show int16 saturation";
  if (cpu_has_vnni()) {
    EXPECT_GE(vnni_native, kEncoderMinCosine);
  } else {
    std::printf("[ skipped  ] this CPU has no VNNI: the avx512-vnni form is not expected to be exact here\n");
  }
}

TEST(Quantize, OptionsChangeWhatIsQuantizedAndHow) {
  fs::path dir = temp_dir("q_options");
  fs::path fp32 = export_fixture("bert-seqcls", dir / "fp32", std::nullopt) / "onnx" / "model.onnx";

  QuantizeOptions per_channel;
  per_channel.per_channel = true;
  per_channel.report = dir / "report.json";
  quantize_file(fp32, dir / "pc.onnx", per_channel);
  auto pc = load_onnx(dir / "pc.onnx");
  for (const auto& t : pc.graph().initializer())
    if (t.name() == "bert.encoder.layer.0.attention.self.query.weight_scale") {
      EXPECT_EQ(t.dims_size(), 1);
    }
  nlohmann::json report = nlohmann::json::parse(read_file(dir / "report.json"));
  EXPECT_EQ(report["quantized_per_op"]["MatMul"], 14);
  EXPECT_EQ(report["quantized_per_op"]["Gather"], 3);
  EXPECT_EQ(report["nodes"].size(), 17u);
  EXPECT_TRUE(report["nodes"][0].contains("scale"));
  EXPECT_LT(report["bytes_after"].get<uint64_t>(), report["bytes_before"].get<uint64_t>());

  QuantizeOptions only_matmul;
  only_matmul.op_types = {"MatMul"};
  only_matmul.exclude_nodes = "classifier|pooler";
  only_matmul.weight_type = "uint8";
  only_matmul.reduce_range = true;
  quantize_file(fp32, dir / "mm.onnx", only_matmul);
  auto mm = load_onnx(dir / "mm.onnx");
  auto counts = op_counts(mm);
  EXPECT_EQ(counts["MatMulInteger"], 12);  // 14 minus the excluded pooler and classifier
  EXPECT_EQ(counts["DequantizeLinear"], 0);  // Gather not selected
  for (const auto& t : mm.graph().initializer()) {
    if (t.name() == "bert.encoder.layer.0.attention.self.query.weight_quantized") {
      EXPECT_EQ(t.data_type(), onnx::TensorProto::UINT8);
    }
  }
  EXPECT_TRUE(initializer_names(mm).count("classifier.weight"));

  // All three variants still agree with FP32 in ORT, on both kinds of CPU.
  const fs::path in = models_dir() / "bert-seqcls" / "ref" / "b";
  run_ort(fp32, in, dir / "o_fp32");
  Array f = read_npy(dir / "o_fp32" / "logits.npy");
  for (OrtCpu cpu : int8_test_cpus()) {
    run_ort({{dir / "pc.onnx", in, dir / "o_pc"}, {dir / "mm.onnx", in, dir / "o_mm"}}, cpu);
    EXPECT_GE(cosine(f, read_npy(dir / "o_pc" / "logits.npy")), kEncoderMinCosine) << cpu_name(cpu);
    EXPECT_GE(cosine(f, read_npy(dir / "o_mm" / "logits.npy")), kEncoderMinCosine) << cpu_name(cpu);
  }
}

// A model this project did not produce, written with the ONNX C++ API: Gemm(transB=1) + shared weight.
TEST(Quantize, ForeignModelWithGemmTransB) {
  fs::path dir = temp_dir("q_foreign");
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.add_opset_import()->set_version(13);
  auto* g = m.mutable_graph();
  g->set_name("foreign");
  auto add_vi = [](google::protobuf::RepeatedPtrField<onnx::ValueInfoProto>* list, const std::string& name,
                   std::vector<std::string> dims) {
    auto* vi = list->Add();
    vi->set_name(name);
    auto* tt = vi->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(onnx::TensorProto::FLOAT);
    for (auto& d : dims) {
      if (isdigit(static_cast<unsigned char>(d[0]))) tt->mutable_shape()->add_dim()->set_dim_value(std::stoll(d));
      else tt->mutable_shape()->add_dim()->set_dim_param(d);
    }
  };
  add_vi(g->mutable_input(), "x", {"batch", "16"});
  add_vi(g->mutable_output(), "y", {"batch", "8"});
  add_vi(g->mutable_output(), "z", {"batch", "8"});
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0, 0.5);
  auto add_init = [&](const std::string& name, std::vector<int64_t> dims) {
    auto* t = g->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::FLOAT);
    int64_t n = 1;
    for (auto d : dims) { t->add_dims(d); n *= d; }
    for (int64_t i = 0; i < n; ++i) t->add_float_data(nd(rng));  // typed field, not raw_data
  };
  add_init("W", {8, 16});  // used transposed by Gemm(transB=1)
  add_init("C", {8});
  add_init("V", {16, 8});  // shared by two MatMuls
  auto node = [&](const std::string& op, std::vector<std::string> in, std::string out) {
    auto* n = g->add_node();
    n->set_op_type(op);
    n->set_name(op + "_" + out);
    for (auto& i : in) n->add_input(i);
    n->add_output(out);
    return n;
  };
  auto* gemm = node("Gemm", {"x", "W", "C"}, "y");
  auto* tb = gemm->add_attribute();
  tb->set_name("transB");
  tb->set_type(onnx::AttributeProto::INT);
  tb->set_i(1);
  auto* alpha = gemm->add_attribute();
  alpha->set_name("alpha");
  alpha->set_type(onnx::AttributeProto::FLOAT);
  alpha->set_f(0.5f);
  node("MatMul", {"x", "V"}, "m1");
  node("Relu", {"x"}, "r");
  node("MatMul", {"r", "V"}, "m2");
  node("Add", {"m1", "m2"}, "z");
  onnx::checker::check_model(m);
  {
    std::ofstream f(dir / "foreign.onnx", std::ios::binary);
    m.SerializeToOstream(&f);
  }
  QuantizeOptions opt;
  auto r = quantize_file(dir / "foreign.onnx", dir / "foreign_q.onnx", opt);
  EXPECT_EQ(r.quantized_per_op["Gemm"], 1);
  EXPECT_EQ(r.quantized_per_op["MatMul"], 2);
  auto q = load_onnx(dir / "foreign_q.onnx");
  onnx::checker::check_model(q);
  expect_no_float_weight_matmul(q);
  auto inits = initializer_names(q);
  EXPECT_TRUE(inits.count("V_quantized"));
  EXPECT_FALSE(inits.count("V_quantized_1"));  // the shared weight is quantized once
  EXPECT_FALSE(inits.count("V"));              // and its float copy removed
  EXPECT_EQ(op_counts(q)["DynamicQuantizeLinear"], 2);  // x (shared by Gemm and MatMul) and r

  std::vector<float> x(3 * 16);
  for (auto& v : x) v = nd(rng);
  fs::create_directories(dir / "in");
  write_npy(dir / "in" / "x.npy", make_f32({3, 16}, x.data()));
  run_ort(dir / "foreign.onnx", dir / "in", dir / "o32");
  for (OrtCpu cpu : int8_test_cpus()) {
    run_ort(dir / "foreign_q.onnx", dir / "in", dir / "o8", cpu);
    for (const char* out : {"y.npy", "z.npy"}) {
      double cos = cosine(read_npy(dir / "o32" / out), read_npy(dir / "o8" / out));
      std::printf("[ metrics  ] foreign %s on the %s: cosine %.5f\n", out, cpu_name(cpu), cos);
      EXPECT_GE(cos, kEncoderMinCosine) << out << " " << cpu_name(cpu);
    }
  }
}

TEST(Quantize, ExternalDataInputIsRead) {
  fs::path dir = temp_dir("q_external");
  ExportOptions opt;
  opt.model_dir = models_dir() / "bert";
  opt.out_dir = dir / "export";
  opt.force_external_data = true;
  export_model(opt);
  ASSERT_TRUE(fs::exists(dir / "export" / "onnx" / "model.onnx_data"));
  quantize_file(dir / "export" / "onnx" / "model.onnx", dir / "q.onnx", QuantizeOptions{});
  const fs::path in = models_dir() / "bert" / "ref" / "a";
  run_ort(dir / "export" / "onnx" / "model.onnx", in, dir / "o32");
  for (OrtCpu cpu : int8_test_cpus()) {
    run_ort(dir / "q.onnx", in, dir / "o8", cpu);
    EXPECT_GE(cosine(read_npy(dir / "o32" / "last_hidden_state.npy"), read_npy(dir / "o8" / "last_hidden_state.npy")),
              kEncoderMinCosine) << cpu_name(cpu);
  }
}

// export --quantize measures INT8 against FP32 in ONNX Runtime on the exporter's example input, logs it
// and writes it into --report; without ONNX Runtime it warns and still exports.
TEST(Quantize, ExportReportsInt8AccuracyOnThisCpu) {
  fs::path dir = temp_dir("q_report");
  const std::string args = "export '" + (models_dir() / "bert-seqcls").string() + "' '" + (dir / "out").string() +
                           "' --quantize";
  CliResult r = run_cli(args + " --report '" + (dir / "r.json").string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("onnx/model_quantized.onnx vs onnx/model.onnx in ONNX Runtime"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("logits cosine"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir / "out" / ".int8-check"));  // the comparison's files stay out of the export
  auto report = nlohmann::json::parse(read_file(dir / "r.json"));
  const auto& acc = report["quantized"]["accuracy"];
  ASSERT_TRUE(acc["measured"].get<bool>()) << acc.dump();
  EXPECT_EQ(report["quantized"]["target"], "portable");
  EXPECT_EQ(acc["cpu"], cpu_summary());
  ASSERT_EQ(acc["outputs"].size(), 1u);
  EXPECT_EQ(acc["outputs"][0]["output"], "logits");
  // The export's own check input is 5 rows of 6 seeded random tokens: 10 logits, a small sample (seed 0 gives
  // cosine 0.9944, argmax 1.0). The 0.998 bound is asserted on the reference inputs (QuantizedFixture);
  // here the figures must be those of a working INT8 model (a wrong scale or weight drops far below).
  const double cosine = acc["outputs"][0]["cosine"].get<double>();
  EXPECT_GE(cosine, 0.99);
  EXPECT_LE(cosine, 1.0 + 1e-9);
  EXPECT_GE(acc["outputs"][0]["argmax_agreement"].get<double>(), 0.8);

  setenv("HF2ONNX_ORT_RUNNER", (dir / "nowhere" / "ort_run.mjs").c_str(), 1);
  CliResult missing = run_cli(args + " --report '" + (dir / "r2.json").string() + "'");
  unsetenv("HF2ONNX_ORT_RUNNER");
  ASSERT_EQ(missing.exit_code, 0) << missing.err;
  EXPECT_NE(missing.err.find("was not compared with onnx/model.onnx"), std::string::npos) << missing.err;
  EXPECT_TRUE(fs::exists(dir / "out" / "onnx" / "model_quantized.onnx"));
  EXPECT_FALSE(nlohmann::json::parse(read_file(dir / "r2.json"))["quantized"]["accuracy"]["measured"].get<bool>());
}

TEST(Quantize, BadInput) {
  fs::path dir = temp_dir("q_bad");
  fs::path fp32 = export_fixture("bert", dir / "fp32", std::nullopt) / "onnx" / "model.onnx";
  auto fails = [&](const std::string& args, const std::string& expected) {
    auto r = run_cli("quantize " + args);
    EXPECT_EQ(r.exit_code, 1) << args << ": " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_NE(r.err.find(expected), std::string::npos) << "expected '" << expected << "' in " << r.err;
  };
  write_file(dir / "junk.onnx", "this is not a protobuf at all, just text\n");
  fails("'" + (dir / "junk.onnx").string() + "' '" + (dir / "x.onnx").string() + "'", "not a valid ONNX model");
  EXPECT_FALSE(fs::exists(dir / "x.onnx"));
  fails("'" + fp32.string() + "' '" + fp32.string() + "'", "would overwrite the input");
  fails("'" + fp32.string() + "' '" + (dir / "y.onnx").string() + "' --op-types MatMul,Conv", "unknown op type 'Conv'");
  fails("'" + fp32.string() + "' '" + (dir / "y.onnx").string() + "' --exclude-nodes '('", "invalid regular expression");
  EXPECT_FALSE(fs::exists(dir / "y.onnx"));

  // Opset 9: refused.
  auto m = load_onnx(fp32);
  m.mutable_opset_import(0)->set_version(9);
  {
    std::ofstream f(dir / "old.onnx", std::ios::binary);
    m.SerializeToOstream(&f);
  }
  fails("'" + (dir / "old.onnx").string() + "' '" + (dir / "z.onnx").string() + "'", "opset 9 is below 10");

  // Nothing to quantize: a warning and a valid copy.
  auto r = run_cli("quantize '" + fp32.string() + "' '" + (dir / "same.onnx").string() + "' --exclude-nodes '.'");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("nothing to quantize"), std::string::npos) << r.err;
  auto copy = load_onnx(dir / "same.onnx");
  onnx::checker::check_model(copy);
  EXPECT_EQ(copy.graph().node_size(), load_onnx(fp32).graph().node_size());
}

}  // namespace
}  // namespace hf2onnx::test
