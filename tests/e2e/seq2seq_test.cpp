// Tier 3 for encoder-decoder models: the T5, BART, Marian and Whisper fixtures exported at opsets 14 and
// 17 with --quantize. Against transformers: the encoder output and the logits at sets a and b (the
// decoder fed with ONNX Runtime's encoder output), and greedy generation — ONNX Runtime with the two
// decoders, with the merged decoder, and transformers.js's generate() on the folder — token for token.
// Also: the merged decoder's no-past branch equals decoder_model, a prefill + cached call equals one call,
// and the INT8 set (structure, greedy agreement with FP32, the same tokens on both CPUs).
#include <cstring>
#include <functional>
#include <map>

#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include "common/test_util.h"
#include "hf2onnx/export.h"

namespace hf2onnx::test {
namespace {

constexpr double kAtol = 1e-4;

struct Seq2Seq {
  std::string fixture;
  int layers, heads, head_dim;
  int64_t start;  // decoder_start_token_id
  bool speech;    // input_features, no attention masks
};
const Seq2Seq kModels[] = {
    {"t5", 2, 4, 8, 0, false}, {"bart", 2, 4, 8, 2, false}, {"marian", 2, 4, 8, 999, false}, {"whisper", 2, 4, 8, 998, true}};

const char* const kFiles[] = {"encoder_model", "decoder_model", "decoder_with_past_model", "decoder_model_merged"};

std::vector<std::string> names(const google::protobuf::RepeatedPtrField<onnx::ValueInfoProto>& vis) {
  std::vector<std::string> n;
  for (const auto& vi : vis) n.push_back(vi.name());
  return n;
}

std::vector<std::string> dims_of(const onnx::ValueInfoProto& vi) {
  std::vector<std::string> d;
  for (const auto& x : vi.type().tensor_type().shape().dim())
    d.push_back(x.has_dim_param() ? x.dim_param() : std::to_string(x.dim_value()));
  return d;
}

// Tokens [begin, end) of an int64 [B, S] array.
Array token_slice(const Array& a, int64_t begin, int64_t end) {
  const int64_t b = a.shape[0], s = a.shape[1];
  std::vector<int64_t> v;
  for (int64_t i = 0; i < b; ++i)
    for (int64_t j = begin; j < end; ++j) v.push_back(a.i64()[i * s + j]);
  return make_i64({b, end - begin}, v.data());
}

// Positions [begin, end) along dim 1 of a float [B, S, V] array.
Array step_slice(const Array& a, int64_t begin, int64_t end) {
  const int64_t b = a.shape[0], s = a.shape[1], v = a.shape[2];
  std::vector<float> out;
  for (int64_t i = 0; i < b; ++i) out.insert(out.end(), a.f32() + (i * s + begin) * v, a.f32() + (i * s + end) * v);
  return make_f32({b, end - begin, v}, out.data());
}

std::string seq2seq_flags(const Seq2Seq& m) {
  return "--start " + std::to_string(m.start) + " --cache " + std::to_string(m.heads) + "," + std::to_string(m.head_dim);
}

int64_t equal_tokens(const Array& a, const Array& b) {
  int64_t same = 0;
  for (int64_t i = 0; i < std::min(a.numel(), b.numel()); ++i) same += a.i64()[i] == b.i64()[i];
  return same;
}

struct Case {
  Seq2Seq m;
  int opset;
};
void PrintTo(const Case& c, std::ostream* os) { *os << c.m.fixture << " opset " << c.opset; }

class Seq2SeqExport : public ::testing::TestWithParam<Case> {};

TEST_P(Seq2SeqExport, MatchesTransformersAndGeneratesTheSameTokens) {
  const auto& [m, opset] = GetParam();
  const fs::path dir = temp_dir("s2s_" + m.fixture + std::to_string(opset));
  const fs::path ref = models_dir() / m.fixture / "ref";
  ExportOptions opt;
  opt.model_dir = models_dir() / m.fixture;
  opt.out_dir = dir / "onnx";
  opt.opset = opset;
  opt.quantize = QuantizeOptions{};
  export_model(opt);
  const fs::path& out = opt.out_dir;
  for (const char* f : kFiles)
    for (const char* suffix : {"", "_quantized"}) EXPECT_TRUE(fs::exists(out / "onnx" / (std::string(f) + suffix + ".onnx"))) << f << suffix;

  // I/O names, order and dims (Optimum's; transformers.js feeds the merged decoder by these names).
  const auto enc = load_onnx(out / "onnx" / "encoder_model.onnx"), dec = load_onnx(out / "onnx" / "decoder_model.onnx"),
             past = load_onnx(out / "onnx" / "decoder_with_past_model.onnx"), merged = load_onnx(out / "onnx" / "decoder_model_merged.onnx");
  const std::vector<std::string> want_enc =
      m.speech ? std::vector<std::string>{"input_features"} : std::vector<std::string>{"input_ids", "attention_mask"};
  EXPECT_EQ(names(enc.graph().input()), want_enc);
  EXPECT_EQ(names(enc.graph().output()), std::vector<std::string>{"last_hidden_state"});
  std::vector<std::string> want_dec, want_past, want_out, want_past_out;
  if (!m.speech) want_dec.push_back("encoder_attention_mask");
  want_dec.push_back("input_ids");
  want_past = want_dec;
  want_dec.push_back("encoder_hidden_states");
  want_out = want_past_out = {"logits"};
  for (int i = 0; i < m.layers; ++i)
    for (const char* part : {".decoder.key", ".decoder.value", ".encoder.key", ".encoder.value"}) {
      want_past.push_back("past_key_values." + std::to_string(i) + part);
      want_out.push_back("present." + std::to_string(i) + part);
      if (std::strstr(part, "decoder")) want_past_out.push_back("present." + std::to_string(i) + part);
    }
  EXPECT_EQ(names(dec.graph().input()), want_dec);
  EXPECT_EQ(names(dec.graph().output()), want_out);
  EXPECT_EQ(names(past.graph().input()), want_past);
  EXPECT_EQ(names(past.graph().output()), want_past_out);
  std::vector<std::string> want_merged = want_dec;
  for (size_t i = m.speech ? 1 : 2; i < want_past.size(); ++i) want_merged.push_back(want_past[i]);
  want_merged.push_back("use_cache_branch");
  EXPECT_EQ(names(merged.graph().input()), want_merged);
  EXPECT_EQ(names(merged.graph().output()), want_out);
  const auto& flag = merged.graph().input(merged.graph().input_size() - 1);
  EXPECT_EQ(flag.type().tensor_type().elem_type(), onnx::TensorProto::BOOL);
  EXPECT_EQ(dims_of(flag), std::vector<std::string>{"1"});
  const std::string h = std::to_string(m.heads), d = std::to_string(m.head_dim);
  EXPECT_EQ(dims_of(past.graph().input(m.speech ? 1 : 2)),
            (std::vector<std::string>{"batch_size", h, "past_decoder_sequence_length", d}));
  EXPECT_EQ(dims_of(dec.graph().input(m.speech ? 0 : 1)), (std::vector<std::string>{"batch_size", "decoder_sequence_length"}));

  for (const std::string set : {"a", "b"}) {
    // Encoder, then decoder_model on ONNX Runtime's encoder output, and the merged decoder's no-past branch.
    const fs::path e_in = dir / ("enc_in_" + set), d_in = dir / ("dec_in_" + set);
    fs::create_directories(e_in);
    fs::create_directories(d_in);
    for (const char* f : {"input_ids", "attention_mask", "input_features"})
      if (fs::exists(ref / set / (std::string(f) + ".npy"))) fs::copy_file(ref / set / (std::string(f) + ".npy"), e_in / (std::string(f) + ".npy"));
    run_ort(out / "onnx" / "encoder_model.onnx", e_in, dir / ("enc_out_" + set));
    Array states = read_npy(dir / ("enc_out_" + set) / "last_hidden_state.npy");
    Array want_states = read_npy(ref / set / "encoder_last_hidden_state.npy");
    ASSERT_EQ(states.shape, want_states.shape);
    EXPECT_LE(max_abs_diff(states, want_states), kAtol) << set;
    write_npy(d_in / "encoder_hidden_states.npy", states);
    Array ids = read_npy(ref / set / "decoder_input_ids.npy");
    write_npy(d_in / "input_ids.npy", ids);
    if (!m.speech) fs::copy_file(ref / set / "attention_mask.npy", d_in / "encoder_attention_mask.npy");
    const uint8_t no = 0;
    write_npy(d_in / "use_cache_branch.npy", Array{"|b1", {1}, {no}});
    for (const auto& name : want_merged)  // the merged decoder's first step: empty past tensors, ignored
      if (name.rfind("past_key_values.", 0) == 0) write_npy(d_in / (name + ".npy"), Array{"<f4", {ids.shape[0], m.heads, 0, m.head_dim}, {}});
    run_ort({{out / "onnx" / "decoder_model.onnx", d_in, dir / ("dec_out_" + set)},
             {out / "onnx" / "decoder_model_merged.onnx", d_in, dir / ("merged_out_" + set)}});
    Array want = read_npy(ref / set / "logits.npy");
    Array got = read_npy(dir / ("dec_out_" + set) / "logits.npy");
    ASSERT_EQ(got.shape, want.shape);
    EXPECT_LE(max_abs_diff(got, want), kAtol) << set;
    std::printf("[ metrics  ] %s opset %d set %s: encoder max |diff| %.2g, logits max |diff| %.2g\n", m.fixture.c_str(),
                opset, set.c_str(), max_abs_diff(states, want_states), max_abs_diff(got, want));
    EXPECT_EQ(max_abs_diff(read_npy(dir / ("merged_out_" + set) / "logits.npy"), got), 0.0) << set;

    // Cache consistency: decoder_model on the first two tokens, then decoder_with_past (and the merged
    // decoder's cached branch) on the rest at once, equal the one-call logits.
    const int64_t split = 2, total = ids.shape[1];
    const fs::path p_in = dir / ("prefill_" + set), c_in = dir / ("cached_" + set);
    fs::create_directories(p_in);
    fs::copy(d_in, p_in, fs::copy_options::overwrite_existing | fs::copy_options::recursive);
    write_npy(p_in / "input_ids.npy", token_slice(ids, 0, split));
    run_ort(out / "onnx" / "decoder_model.onnx", p_in, dir / ("prefill_out_" + set));
    fs::create_directories(c_in);
    fs::copy(d_in, c_in, fs::copy_options::overwrite_existing | fs::copy_options::recursive);
    write_npy(c_in / "input_ids.npy", token_slice(ids, split, total));
    const uint8_t yes = 1;
    write_npy(c_in / "use_cache_branch.npy", Array{"|b1", {1}, {yes}});
    for (const auto& e : fs::directory_iterator(dir / ("prefill_out_" + set))) {
      const std::string n = e.path().filename().string();
      if (n.rfind("present.", 0) == 0)
        fs::copy_file(e.path(), c_in / ("past_key_values." + n.substr(8)), fs::copy_options::overwrite_existing);
    }
    run_ort({{out / "onnx" / "decoder_with_past_model.onnx", c_in, dir / ("cached_out_" + set)},
             {out / "onnx" / "decoder_model_merged.onnx", c_in, dir / ("merged_cached_out_" + set)}});
    const Array tail = step_slice(got, split, total);
    EXPECT_LE(max_abs_diff(read_npy(dir / ("cached_out_" + set) / "logits.npy"), tail), kAtol) << set;
    EXPECT_LE(max_abs_diff(read_npy(dir / ("merged_cached_out_" + set) / "logits.npy"), tail), kAtol) << set;
  }

  // Greedy generation, 8 tokens from decoder_start_token_id, both rows.
  const Array want_seq = read_npy(ref / "generate" / "sequences.npy");
  const std::string gen = (ref / "generate").string();
  const int64_t steps = want_seq.shape[1] - 1;
  auto generate = [&](const std::string& script, const std::string& name, const std::string& flags, OrtCpu cpu = OrtCpu::Native) {
    const fs::path f = dir / (name + ".npy");
    // ONNX Runtime's runner takes the folder of the .onnx files; transformers.js the export as a whole.
    const fs::path model = script == "tjs_generate.mjs" ? out : out / "onnx";
    run_tool(script, model.string() + " " + gen + " " + std::to_string(steps) + " " + f.string() + " " + flags, cpu);
    return read_npy(f);
  };
  EXPECT_EQ(generate("ort_seq2seq.mjs", "ort_two", seq2seq_flags(m)).bytes, want_seq.bytes);
  EXPECT_EQ(generate("ort_seq2seq.mjs", "ort_merged", seq2seq_flags(m) + " --merged").bytes, want_seq.bytes);
  EXPECT_EQ(generate("tjs_generate.mjs", "tjs", "").bytes, want_seq.bytes) << "transformers.js";

  // INT8: every _quantized file has integer MatMuls (the merged one inside its branches); its greedy
  // tokens are the same in ORT and transformers.js (q8) and on both CPUs; agreement with FP32 reported.
  for (const char* f : kFiles) {
    const auto q = load_onnx(out / "onnx" / (std::string(f) + "_quantized.onnx"));
    int integer = 0;
    std::function<void(const onnx::GraphProto&)> count = [&](const onnx::GraphProto& g) {
      for (const auto& n : g.node()) {
        integer += n.op_type() == "MatMulInteger";
        for (const auto& a : n.attribute())
          if (a.has_g()) count(a.g());
      }
    };
    count(q.graph());
    EXPECT_GT(integer, 0) << f;
  }
  const std::string q8 = seq2seq_flags(m) + " --merged --suffix _quantized";
  const Array int8 = generate("ort_seq2seq.mjs", "int8", q8);
  EXPECT_EQ(generate("tjs_generate.mjs", "tjs_q8", "--dtype q8").bytes, int8.bytes) << "transformers.js q8";
  // Under qemu the Whisper encoder (1500 positions) takes minutes; its integer MatMuls are the same
  // uint8-weight kernels the text models check here.
  if (!m.speech) {
    EXPECT_EQ(generate("ort_seq2seq.mjs", "int8_avx2", q8, OrtCpu::EmulatedAvx2).bytes, int8.bytes) << "emulated AVX2";
  }
  std::printf("[ metrics  ] %s opset %d: INT8 greedy tokens equal to FP32: %lld of %lld\n", m.fixture.c_str(), opset,
              static_cast<long long>(equal_tokens(int8, want_seq)), static_cast<long long>(want_seq.numel()));
}

// Weights in external data (what files over 2 GB get): every file, the merged decoder included (its
// weights read from the decoders' data files and written to its own), still generates the same tokens.
TEST(Seq2SeqExternalData, EveryFileWorksWithExternalWeights) {
  const Seq2Seq& m = kModels[1];  // bart
  const fs::path dir = temp_dir("s2s_external");
  ExportOptions opt;
  opt.model_dir = models_dir() / m.fixture;
  opt.out_dir = dir / "onnx";
  opt.force_external_data = true;
  export_model(opt);
  for (const char* f : kFiles) {
    EXPECT_TRUE(fs::exists(opt.out_dir / "onnx" / (std::string(f) + ".onnx_data"))) << f;
    EXPECT_LT(fs::file_size(opt.out_dir / "onnx" / (std::string(f) + ".onnx")), 100000u) << f;  // no weights inline
  }
  const fs::path ref = models_dir() / m.fixture / "ref" / "generate";
  for (const std::string form : {"", " --merged"}) {
    const fs::path f = dir / "seq.npy";
    run_tool("ort_seq2seq.mjs", (opt.out_dir / "onnx").string() + " " + ref.string() + " 8 " + f.string() + " " + seq2seq_flags(m) + form);
    EXPECT_EQ(read_npy(f).bytes, read_npy(ref / "sequences.npy").bytes) << form;
  }
}

std::vector<Case> cases() {
  std::vector<Case> c;
  for (const auto& m : kModels) {
    for (int opset : {14, 17}) c.push_back({m, opset});
    if (m.fixture == "t5" || m.fixture == "whisper") c.push_back({m, kMaxOpset});  // the newest opset
  }
  return c;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, Seq2SeqExport, ::testing::ValuesIn(cases()), [](const auto& info) {
  return info.param.m.fixture + "_opset" + std::to_string(info.param.opset);
});

}  // namespace
}  // namespace hf2onnx::test
