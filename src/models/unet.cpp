// UNet2DConditionModel — mirrors diffusers 0.30.3 models/unets/unet_2d_condition.py and unet_2d_blocks.py
// (CrossAttnDownBlock2D, DownBlock2D, UNetMidBlock2DCrossAttn, UpBlock2D, CrossAttnUpBlock2D) with
// transformers/transformer_2d.py and attention.py (BasicTransformerBlock, GEGLU): the Stable Diffusion 1.x / 2.x
// UNet. Optimum's export of it: sample [batch, C, height, width], timestep int64 [batch] (one per row),
// encoder_hidden_states [batch, sequence, cross_attention_dim] → out_sample.
#include <cmath>

#include "hf2onnx/error.h"
#include "models/builders.h"
#include "models/layers/common.h"
#include "models/layers/diffusion.h"
#include "models/model.h"

namespace hf2onnx::unet {
namespace {

constexpr size_t kMaxBlocks = 8;
constexpr int64_t kMaxLayers = 64, kMaxWidth = 1 << 16;

struct UNetConfig {
  int64_t in_channels, out_channels, cross_attention_dim, norm_num_groups, time_embed_dim, conv_in_kernel,
      conv_out_kernel, freq_shift;
  double norm_eps;
  bool flip_sin_to_cos, use_linear_projection, upcast_attention;
  std::vector<std::string> down_block_types, up_block_types;
  std::vector<int64_t> block_out_channels, heads, layers_per_block, transformer_layers_per_block;

  static UNetConfig from(const hf::Config& raw) {
    UNetConfig c;
    c.down_block_types = raw.get_strings("down_block_types");
    c.up_block_types = raw.get_strings("up_block_types");
    if (raw.has("block_out_channels"))
      c.block_out_channels = raw.int_or_list("block_out_channels", raw.get_doubles("block_out_channels").size(), std::nullopt);
    if (c.down_block_types.empty()) c.down_block_types = {"CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"};
    if (c.up_block_types.empty()) c.up_block_types = {"UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"};
    if (c.block_out_channels.empty()) c.block_out_channels = {320, 640, 1280, 1280};
    const size_t n = c.down_block_types.size();
    if (c.block_out_channels.size() != n || c.up_block_types.size() != n)
      raw.fail("block_out_channels", "must have one entry per down and up block");
    for (const auto& t : c.down_block_types)
      if (t != "CrossAttnDownBlock2D" && t != "DownBlock2D")
        raw.fail("down_block_types", "holds '" + t + "': supported are CrossAttnDownBlock2D and DownBlock2D");
    for (const auto& t : c.up_block_types)
      if (t != "CrossAttnUpBlock2D" && t != "UpBlock2D")
        raw.fail("up_block_types", "holds '" + t + "': supported are CrossAttnUpBlock2D and UpBlock2D");
    if (auto mid = raw.get_string("mid_block_type"); mid && *mid != "UNetMidBlock2DCrossAttn")
      raw.fail("mid_block_type", "= '" + *mid + "': only UNetMidBlock2DCrossAttn is supported");
    // In diffusers' configs `attention_head_dim` is the number of heads (its num_attention_heads defaults to it;
    // passing num_attention_heads itself is an error in 0.30.3). Each block's head size is its channels / heads.
    if (raw.has("num_attention_heads")) raw.fail("num_attention_heads", "must be null (diffusers reads the heads from attention_head_dim)");
    c.heads = raw.int_or_list("attention_head_dim", n, 8);
    c.layers_per_block = raw.int_or_list("layers_per_block", n, 2);
    c.transformer_layers_per_block = raw.int_or_list("transformer_layers_per_block", n, 1);
    c.in_channels = raw.get_int("in_channels").value_or(4);
    c.out_channels = raw.get_int("out_channels").value_or(4);
    if (auto v = raw.get_int("cross_attention_dim")) c.cross_attention_dim = *v;
    else if (raw.has("cross_attention_dim")) raw.fail("cross_attention_dim", "must be one integer (a list per block is not supported)");
    else c.cross_attention_dim = 1280;
    c.norm_num_groups = raw.get_int("norm_num_groups").value_or(32);
    c.norm_eps = raw.get_double("norm_eps").value_or(1e-5);
    c.time_embed_dim = raw.get_int("time_embedding_dim").value_or(c.block_out_channels[0] * 4);
    c.conv_in_kernel = raw.get_int("conv_in_kernel").value_or(3);
    c.conv_out_kernel = raw.get_int("conv_out_kernel").value_or(3);
    c.flip_sin_to_cos = raw.get_bool("flip_sin_to_cos").value_or(true);
    c.freq_shift = raw.get_int("freq_shift").value_or(0);
    c.use_linear_projection = raw.get_bool("use_linear_projection").value_or(false);
    c.upcast_attention = raw.get_bool("upcast_attention").value_or(false);
    // Options that change the graph and are not implemented: refused by name rather than ignored.
    for (const char* key : {"addition_embed_type", "class_embed_type", "num_class_embeds", "encoder_hid_dim",
                            "encoder_hid_dim_type", "time_cond_proj_dim", "time_embedding_act_fn", "timestep_post_act",
                            "cross_attention_norm", "addition_time_embed_dim", "projection_class_embeddings_input_dim",
                            "reverse_transformer_layers_per_block", "mid_block_only_cross_attention"})
      if (raw.has(key)) raw.fail(key, "is not supported (only null)");
    for (const char* key : {"center_input_sample", "dual_cross_attention", "class_embeddings_concat", "resnet_skip_time_act"})
      if (raw.get_bool(key).value_or(false)) raw.fail(key, "is not supported (only false)");
    if (raw.has("only_cross_attention") && raw.get_bool("only_cross_attention").value_or(true))
      raw.fail("only_cross_attention", "is not supported (only false)");
    for (const auto& [key, want] : std::vector<std::pair<const char*, const char*>>{
             {"act_fn", "silu"}, {"time_embedding_type", "positional"}, {"resnet_time_scale_shift", "default"},
             {"attention_type", "default"}})
      if (auto v = raw.get_string(key); v && *v != want) raw.fail(key, "= '" + *v + "': only '" + want + "' is supported");
    for (const char* key : {"resnet_out_scale_factor", "mid_block_scale_factor"})
      if (raw.get_double(key).value_or(1.0) != 1.0) raw.fail(key, "is not supported (only 1)");
    // Sizes are bounded before any module is built: a config may come from anyone, and a billion layers would be
    // built (and fail only at load time) otherwise.
    if (n > kMaxBlocks) raw.fail("down_block_types", "has more than " + std::to_string(kMaxBlocks) + " blocks");
    auto bounded = [&](const char* key, int64_t v) {
      if (v <= 0 || v > kMaxWidth) raw.fail(key, "must be between 1 and " + std::to_string(kMaxWidth));
    };
    for (const auto& [key, v] : std::vector<std::pair<const char*, int64_t>>{
             {"in_channels", c.in_channels}, {"out_channels", c.out_channels}, {"cross_attention_dim", c.cross_attention_dim},
             {"norm_num_groups", c.norm_num_groups}, {"time_embedding_dim", c.time_embed_dim}})
      bounded(key, v);
    if (c.conv_in_kernel <= 0 || c.conv_in_kernel > 31 || c.conv_in_kernel % 2 == 0 || c.conv_out_kernel <= 0 ||
        c.conv_out_kernel > 31 || c.conv_out_kernel % 2 == 0)
      raw.fail("conv_in_kernel", "and conv_out_kernel must be odd, at most 31");
    for (size_t i = 0; i < n; ++i) {
      const int64_t ch = c.block_out_channels[i];
      bounded("block_out_channels", ch);
      if (ch % c.norm_num_groups != 0) raw.fail("block_out_channels", "must be multiples of norm_num_groups");
      if (c.heads[i] <= 0 || ch % c.heads[i] != 0) raw.fail("attention_head_dim", "(the number of heads) must divide each block's channels");
      if (c.layers_per_block[i] <= 0 || c.layers_per_block[i] > kMaxLayers)
        raw.fail("layers_per_block", "must be between 1 and " + std::to_string(kMaxLayers));
      if (c.transformer_layers_per_block[i] <= 0 || c.transformer_layers_per_block[i] > kMaxLayers)
        raw.fail("transformer_layers_per_block", "must be between 1 and " + std::to_string(kMaxLayers));
    }
    if (c.block_out_channels[0] % 2 != 0) raw.fail("block_out_channels", "[0] must be even (the timestep embedding's size)");
    if (c.freq_shift < 0 || c.freq_shift >= c.block_out_channels[0] / 2) raw.fail("freq_shift", "must be in [0, block_out_channels[0] / 2)");
    return c;
  }
};

// GEGLU: proj → [value | gate] halves → value · gelu(gate) (exact gelu).
struct GegluImpl : torch::nn::Module {
  GegluImpl(int64_t dim, int64_t inner) : inner(inner) { proj = register_module("proj", layers::Linear(dim, inner * 2)); }
  torch::Tensor forward(const torch::Tensor& x) {
    auto h = proj(x);
    return h.slice(-1, 0, inner) * torch::gelu(h.slice(-1, inner, 2 * inner));
  }
  layers::Linear proj{nullptr};
  int64_t inner;
};
TORCH_MODULE(Geglu);

// FeedForward: net.0 = GEGLU(dim, 4·dim), net.1 = Dropout, net.2 = Linear(4·dim, dim).
struct FeedForwardImpl : torch::nn::Module {
  explicit FeedForwardImpl(int64_t dim) {
    net = register_module("net", torch::nn::Sequential(Geglu(dim, 4 * dim), torch::nn::Dropout(0.0),
                                                       layers::Linear(4 * dim, dim)));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    return net[2]->as<layers::LinearImpl>()->forward(net[0]->as<GegluImpl>()->forward(x));
  }
  torch::nn::Sequential net{nullptr};
};
TORCH_MODULE(FeedForward);

// BasicTransformerBlock (norm_type "layer_norm", eps 1e-5): self-attention, cross-attention on the text, GEGLU
// feed-forward, each pre-normed and added to its input.
struct TransformerBlockImpl : torch::nn::Module {
  TransformerBlockImpl(int64_t dim, int64_t heads, int64_t head_dim, int64_t context_dim) {
    norm1 = register_module("norm1", layers::LayerNorm(dim, 1e-5));
    attn1 = register_module("attn1", layers::CrossAttention(dim, dim, heads, head_dim, false));
    norm2 = register_module("norm2", layers::LayerNorm(dim, 1e-5));
    attn2 = register_module("attn2", layers::CrossAttention(dim, context_dim, heads, head_dim, false));
    norm3 = register_module("norm3", layers::LayerNorm(dim, 1e-5));
    ff = register_module("ff", FeedForward(dim));
  }
  torch::Tensor forward(torch::Tensor x, const torch::Tensor& context) {
    x = attn1(norm1(x)) + x;
    x = attn2(norm2(x), context) + x;
    return ff(norm3(x)) + x;
  }
  layers::LayerNorm norm1{nullptr}, norm2{nullptr}, norm3{nullptr};
  layers::CrossAttention attn1{nullptr}, attn2{nullptr};
  FeedForward ff{nullptr};
};
TORCH_MODULE(TransformerBlock);

// Transformer2DModel (continuous input): GroupNorm (eps 1e-6, fixed in diffusers) → proj_in → tokens →
// transformer_blocks → proj_out → image, plus the input. proj_in / proj_out are 1×1 convs applied on the image
// (SD 1.x), or Linears on the tokens (use_linear_projection, SD 2.x).
struct Transformer2DImpl : torch::nn::Module {
  Transformer2DImpl(int64_t channels, int64_t heads, int64_t layers_count, const UNetConfig& c)
      : linear(c.use_linear_projection) {
    const int64_t head_dim = channels / heads;
    norm = register_module("norm", layers::GroupNorm(c.norm_num_groups, channels, 1e-6));
    if (linear) proj_in_linear = register_module("proj_in", layers::Linear(channels, channels));
    else proj_in_conv = register_module("proj_in", layers::Conv2d(channels, channels, 1));
    transformer_blocks = register_module("transformer_blocks", torch::nn::ModuleList());
    for (int64_t i = 0; i < layers_count; ++i)
      transformer_blocks->push_back(TransformerBlock(channels, heads, head_dim, c.cross_attention_dim));
    if (linear) proj_out_linear = register_module("proj_out", layers::Linear(channels, channels));
    else proj_out_conv = register_module("proj_out", layers::Conv2d(channels, channels, 1));
  }
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& context) {
    auto h = norm(x);
    h = linear ? proj_in_linear(layers::image_to_tokens(h)) : layers::image_to_tokens(proj_in_conv(h));
    for (const auto& b : *transformer_blocks) h = b->as<TransformerBlockImpl>()->forward(h, context);
    h = linear ? layers::tokens_to_image(proj_out_linear(h), x) : proj_out_conv(layers::tokens_to_image(h, x));
    return h + x;
  }
  bool linear;
  layers::GroupNorm norm{nullptr};
  layers::Conv2d proj_in_conv{nullptr}, proj_out_conv{nullptr};
  layers::Linear proj_in_linear{nullptr}, proj_out_linear{nullptr};
  torch::nn::ModuleList transformer_blocks{nullptr};
};
TORCH_MODULE(Transformer2D);

// Down blocks: resnets (each followed by its transformer in CrossAttnDownBlock2D); every output is a skip
// connection, and so is the downsampled one. Up blocks: layers_per_block + 1 resnets, each taking the last
// skip not yet used, concatenated after the current tensor; then the upsampler (to the next skip's size).
struct DownBlockImpl : torch::nn::Module {
  DownBlockImpl(int64_t in, int64_t out, int64_t index, bool cross_attention, bool downsample, const UNetConfig& c) {
    resnets = register_module("resnets", torch::nn::ModuleList());
    if (cross_attention) attentions = register_module("attentions", torch::nn::ModuleList());
    for (int64_t i = 0; i < c.layers_per_block[index]; ++i) {
      resnets->push_back(layers::ResnetBlock2D(i == 0 ? in : out, out, c.time_embed_dim, c.norm_num_groups, c.norm_eps));
      if (cross_attention) attentions->push_back(Transformer2D(out, c.heads[index], c.transformer_layers_per_block[index], c));
    }
    if (downsample) downsamplers = register_module("downsamplers", torch::nn::ModuleList(layers::Downsample2D(out, 1)));
  }
  torch::Tensor forward(torch::Tensor h, const torch::Tensor& temb, const torch::Tensor& context,
                        std::vector<torch::Tensor>& skips) {
    for (size_t i = 0; i < resnets->size(); ++i) {
      h = resnets[i]->as<layers::ResnetBlock2DImpl>()->forward(h, temb);
      if (attentions) h = attentions[i]->as<Transformer2DImpl>()->forward(h, context);
      skips.push_back(h);
    }
    if (downsamplers) {
      h = downsamplers[0]->as<layers::Downsample2DImpl>()->forward(h);
      skips.push_back(h);
    }
    return h;
  }
  torch::nn::ModuleList resnets{nullptr}, attentions{nullptr}, downsamplers{nullptr};
};
TORCH_MODULE(DownBlock);

struct UpBlockImpl : torch::nn::Module {
  UpBlockImpl(int64_t in, int64_t prev_out, int64_t out, int64_t index, bool cross_attention, bool upsample,
              const UNetConfig& c) {
    const size_t r = c.block_out_channels.size() - 1 - static_cast<size_t>(index);  // the down block it mirrors
    const int64_t count = c.layers_per_block[r] + 1;
    resnets = register_module("resnets", torch::nn::ModuleList());
    if (cross_attention) attentions = register_module("attentions", torch::nn::ModuleList());
    for (int64_t i = 0; i < count; ++i) {
      const int64_t skip = i == count - 1 ? in : out, resnet_in = i == 0 ? prev_out : out;
      resnets->push_back(layers::ResnetBlock2D(resnet_in + skip, out, c.time_embed_dim, c.norm_num_groups, c.norm_eps));
      if (cross_attention) attentions->push_back(Transformer2D(out, c.heads[r], c.transformer_layers_per_block[r], c));
    }
    if (upsample) upsamplers = register_module("upsamplers", torch::nn::ModuleList(layers::Upsample2D(out)));
  }
  torch::Tensor forward(torch::Tensor h, const torch::Tensor& temb, const torch::Tensor& context,
                        std::vector<torch::Tensor>& skips) {
    for (size_t i = 0; i < resnets->size(); ++i) {
      h = torch::cat({h, skips.back()}, 1);
      skips.pop_back();
      h = resnets[i]->as<layers::ResnetBlock2DImpl>()->forward(h, temb);
      if (attentions) h = attentions[i]->as<Transformer2DImpl>()->forward(h, context);
    }
    if (upsamplers) h = upsamplers[0]->as<layers::Upsample2DImpl>()->forward(h, skips.back());
    return h;
  }
  torch::nn::ModuleList resnets{nullptr}, attentions{nullptr}, upsamplers{nullptr};
};
TORCH_MODULE(UpBlock);

// UNetMidBlock2DCrossAttn: resnets.0, then (attentions.i, resnets.i+1) — one pair in every SD config.
struct MidBlockImpl : torch::nn::Module {
  explicit MidBlockImpl(const UNetConfig& c) {
    const int64_t ch = c.block_out_channels.back();
    resnets = register_module("resnets", torch::nn::ModuleList());
    attentions = register_module("attentions", torch::nn::ModuleList());
    resnets->push_back(layers::ResnetBlock2D(ch, ch, c.time_embed_dim, c.norm_num_groups, c.norm_eps));
    attentions->push_back(Transformer2D(ch, c.heads.back(), c.transformer_layers_per_block.back(), c));
    resnets->push_back(layers::ResnetBlock2D(ch, ch, c.time_embed_dim, c.norm_num_groups, c.norm_eps));
  }
  torch::Tensor forward(torch::Tensor h, const torch::Tensor& temb, const torch::Tensor& context) {
    h = resnets[0]->as<layers::ResnetBlock2DImpl>()->forward(h, temb);
    h = attentions[0]->as<Transformer2DImpl>()->forward(h, context);
    return resnets[1]->as<layers::ResnetBlock2DImpl>()->forward(h, temb);
  }
  torch::nn::ModuleList resnets{nullptr}, attentions{nullptr};
};
TORCH_MODULE(MidBlock);

// TimestepEmbedding: linear_1 → SiLU → linear_2.
struct TimestepEmbeddingImpl : torch::nn::Module {
  TimestepEmbeddingImpl(int64_t in, int64_t dim) {
    linear_1 = register_module("linear_1", layers::Linear(in, dim));
    linear_2 = register_module("linear_2", layers::Linear(dim, dim));
  }
  torch::Tensor forward(const torch::Tensor& x) { return linear_2(torch::silu(linear_1(x))); }
  layers::Linear linear_1{nullptr}, linear_2{nullptr};
};
TORCH_MODULE(TimestepEmbedding);

struct UNetImpl : torch::nn::Module {
  explicit UNetImpl(const UNetConfig& c) : flip_sin_to_cos(c.flip_sin_to_cos) {
    const auto& boc = c.block_out_channels;
    const size_t n = boc.size();
    // get_timestep_embedding's frequencies: exp(-ln(10000) · k / (half - freq_shift)), k < half, in float32.
    const int64_t half = boc[0] / 2;
    frequencies = torch::exp(torch::arange(0, half, torch::kFloat) * -std::log(10000.0) /
                             static_cast<double>(half - c.freq_shift));
    conv_in = register_module("conv_in", layers::Conv2d(c.in_channels, boc[0], c.conv_in_kernel, 1, (c.conv_in_kernel - 1) / 2));
    time_embedding = register_module("time_embedding", TimestepEmbedding(boc[0], c.time_embed_dim));
    down_blocks = register_module("down_blocks", torch::nn::ModuleList());
    for (size_t i = 0; i < n; ++i)
      down_blocks->push_back(DownBlock(i == 0 ? boc[0] : boc[i - 1], boc[i], static_cast<int64_t>(i),
                                       c.down_block_types[i] == "CrossAttnDownBlock2D", i + 1 < n, c));
    mid_block = register_module("mid_block", MidBlock(c));
    up_blocks = register_module("up_blocks", torch::nn::ModuleList());
    for (size_t i = 0; i < n; ++i) {
      const size_t r = n - 1 - i;
      up_blocks->push_back(UpBlock(boc[r == 0 ? 0 : r - 1], boc[i == 0 ? r : r + 1], boc[r], static_cast<int64_t>(i),
                                   c.up_block_types[i] == "CrossAttnUpBlock2D", i + 1 < n, c));
    }
    conv_norm_out = register_module("conv_norm_out", layers::GroupNorm(c.norm_num_groups, boc[0], c.norm_eps));
    conv_out = register_module("conv_out", layers::Conv2d(boc[0], c.out_channels, c.conv_out_kernel, 1, (c.conv_out_kernel - 1) / 2));
  }

  // sample [B, C, H, W], timestep int64 [B], encoder_hidden_states [B, S, D] → [B, out_channels, H, W]
  torch::Tensor forward(const torch::Tensor& sample, const torch::Tensor& timestep, const torch::Tensor& context) {
    auto args = timestep.to(torch::kFloat).unsqueeze(1) * frequencies.unsqueeze(0);  // [B, half]
    auto t_emb = flip_sin_to_cos ? torch::cat({args.cos(), args.sin()}, -1) : torch::cat({args.sin(), args.cos()}, -1);
    auto temb = time_embedding(t_emb);
    auto h = conv_in(sample);
    std::vector<torch::Tensor> skips = {h};
    for (const auto& b : *down_blocks) h = b->as<DownBlockImpl>()->forward(h, temb, context, skips);
    h = mid_block(h, temb, context);
    for (const auto& b : *up_blocks) h = b->as<UpBlockImpl>()->forward(h, temb, context, skips);
    return conv_out(torch::silu(conv_norm_out(h)));
  }

  bool flip_sin_to_cos;
  torch::Tensor frequencies;  // a constant of the graph
  layers::Conv2d conv_in{nullptr}, conv_out{nullptr};
  TimestepEmbedding time_embedding{nullptr};
  torch::nn::ModuleList down_blocks{nullptr}, up_blocks{nullptr};
  MidBlock mid_block{nullptr};
  layers::GroupNorm conv_norm_out{nullptr};
};

}  // namespace
}  // namespace hf2onnx::unet

namespace hf2onnx {

std::shared_ptr<ExportModel> build_unet(const BuildContext& ctx) {
  using namespace unet;
  if (ctx.task != Task::TextToImage)
    throw Error("task '" + std::string(task_name(ctx.task)) + "' is not supported by UNet2DConditionModel (text-to-image)");
  const UNetConfig c = UNetConfig::from(ctx.config);
  auto model = std::make_shared<UNetImpl>(c);
  auto m = std::make_shared<ExportModel>();
  m->task = ctx.task;
  m->module = model;
  const std::string channels = std::to_string(c.in_channels);
  m->graph().inputs = {{"sample", torch::kFloat, {"batch_size", channels, "height", "width"}},
                       {"timestep", torch::kLong, {"batch_size"}},
                       {"encoder_hidden_states", torch::kFloat, {"batch_size", "sequence_length", std::to_string(c.cross_attention_dim)}}};
  m->graph().outputs = {{"out_sample", torch::kFloat, {"batch_size", std::to_string(c.out_channels), "height", "width"}}};
  m->graph().forward = [model](const std::vector<torch::Tensor>& in) {
    return std::vector<torch::Tensor>{model->forward(in[0], in[1], in[2])};
  };
  m->graph().example_inputs = [c](const DimSizes& d) {
    torch::manual_seed(0);
    const int64_t b = d.at("batch_size");
    return std::vector<torch::Tensor>{torch::randn({b, c.in_channels, d.at("height"), d.at("width")}),
                                      torch::randint(0, 1000, {b}, torch::kLong),
                                      torch::randn({b, d.at("sequence_length"), c.cross_attention_dim})};
  };
  return m;
}

}  // namespace hf2onnx
