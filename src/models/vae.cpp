// AutoencoderKL — mirrors diffusers 0.30.3 models/autoencoders/autoencoder_kl.py and vae.py (Encoder, Decoder,
// DownEncoderBlock2D, UpDecoderBlock2D, UNetMidBlock2D), exported as Optimum exports a Stable Diffusion VAE: two
// graphs in two folders,
//   vae_encoder: sample [batch, in_channels, H, W] → latent_parameters = quant_conv(encoder(sample)), the latent
//                distribution's mean ‖ logvar (unclamped; newer Optimum's deterministic output);
//   vae_decoder: latent_sample [batch, latent_channels, h, w] → sample = decoder(post_quant_conv(latent_sample))
//                (no division by scaling_factor: the pipeline does that).
#include "hf2onnx/error.h"
#include "models/builders.h"
#include "models/layers/common.h"
#include "models/layers/diffusion.h"
#include "models/model.h"

namespace hf2onnx::vae {
namespace {

struct VaeConfig {
  int64_t in_channels, out_channels, latent_channels, layers_per_block, norm_num_groups;
  std::vector<int64_t> block_out_channels;
  bool mid_block_add_attention, use_quant_conv, use_post_quant_conv;
  int64_t downsampling() const { return int64_t{1} << (block_out_channels.size() - 1); }

  static VaeConfig from(const hf::Config& raw) {
    VaeConfig c;
    const size_t n_listed = raw.get_doubles("block_out_channels").size();
    c.block_out_channels = n_listed ? raw.int_or_list("block_out_channels", n_listed, std::nullopt) : std::vector<int64_t>{64};
    const size_t n = c.block_out_channels.size();
    if (n > 8) raw.fail("block_out_channels", "has more than 8 blocks");
    auto down = raw.get_strings("down_block_types"), up = raw.get_strings("up_block_types");
    if (down.empty()) down = {"DownEncoderBlock2D"};
    if (up.empty()) up = {"UpDecoderBlock2D"};
    if (down.size() != n || up.size() != n) raw.fail("block_out_channels", "must have one entry per down and up block");
    for (const auto& t : down)
      if (t != "DownEncoderBlock2D") raw.fail("down_block_types", "holds '" + t + "': only DownEncoderBlock2D is supported");
    for (const auto& t : up)
      if (t != "UpDecoderBlock2D") raw.fail("up_block_types", "holds '" + t + "': only UpDecoderBlock2D is supported");
    c.in_channels = raw.get_int("in_channels").value_or(3);
    c.out_channels = raw.get_int("out_channels").value_or(3);
    c.latent_channels = raw.get_int("latent_channels").value_or(4);
    c.layers_per_block = raw.get_int("layers_per_block").value_or(1);
    c.norm_num_groups = raw.get_int("norm_num_groups").value_or(32);
    c.mid_block_add_attention = raw.get_bool("mid_block_add_attention").value_or(true);
    c.use_quant_conv = raw.get_bool("use_quant_conv").value_or(true);
    c.use_post_quant_conv = raw.get_bool("use_post_quant_conv").value_or(true);
    if (auto v = raw.get_string("act_fn"); v && *v != "silu") raw.fail("act_fn", "= '" + *v + "': only 'silu' is supported");
    // Bounded before any module is built (a config may come from anyone).
    constexpr int64_t kMaxWidth = 1 << 16;
    if (c.layers_per_block <= 0 || c.layers_per_block > 64) raw.fail("layers_per_block", "must be between 1 and 64");
    for (const auto& [key, v] : std::vector<std::pair<const char*, int64_t>>{{"in_channels", c.in_channels},
                                                                            {"out_channels", c.out_channels},
                                                                            {"latent_channels", c.latent_channels},
                                                                            {"norm_num_groups", c.norm_num_groups}})
      if (v <= 0 || v > kMaxWidth) raw.fail(key, "must be between 1 and " + std::to_string(kMaxWidth));
    for (int64_t ch : c.block_out_channels)
      if (ch <= 0 || ch > kMaxWidth || ch % c.norm_num_groups != 0)
        raw.fail("block_out_channels", "must be multiples of norm_num_groups, at most " + std::to_string(kMaxWidth));
    return c;
  }
};

// The mid block's attention (diffusers' Attention with _from_deprecated_attn_block): one head of all channels on
// the image's pixels, its GroupNorm (eps 1e-6) inside, q/k/v biased, and the block's input added back.
struct MidAttentionImpl : layers::CrossAttentionImpl {
  MidAttentionImpl(int64_t channels, int64_t groups) : layers::CrossAttentionImpl(channels, channels, 1, channels, true) {
    group_norm = register_module("group_norm", layers::GroupNorm(groups, channels, 1e-6));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto tokens = layers::image_to_tokens(group_norm(x));
    return layers::tokens_to_image(layers::CrossAttentionImpl::forward(tokens), x) + x;
  }
  layers::GroupNorm group_norm{nullptr};
};
TORCH_MODULE(MidAttention);

// UNetMidBlock2D without a time embedding: resnets.0, attentions.0 (left out with mid_block_add_attention false),
// resnets.1; the resnets' GroupNorm eps is 1e-6, as everywhere in the VAE.
struct MidBlockImpl : torch::nn::Module {
  explicit MidBlockImpl(const VaeConfig& c) {
    const int64_t ch = c.block_out_channels.back();
    resnets = register_module("resnets", torch::nn::ModuleList());
    resnets->push_back(layers::ResnetBlock2D(ch, ch, 0, c.norm_num_groups, 1e-6));
    resnets->push_back(layers::ResnetBlock2D(ch, ch, 0, c.norm_num_groups, 1e-6));
    if (c.mid_block_add_attention)
      attentions = register_module("attentions", torch::nn::ModuleList(MidAttention(ch, c.norm_num_groups)));
  }
  torch::Tensor forward(torch::Tensor h) {
    h = resnets[0]->as<layers::ResnetBlock2DImpl>()->forward(h);
    if (attentions) h = attentions[0]->as<MidAttentionImpl>()->forward(h);
    return resnets[1]->as<layers::ResnetBlock2DImpl>()->forward(h);
  }
  torch::nn::ModuleList resnets{nullptr}, attentions{nullptr};
};
TORCH_MODULE(MidBlock);

// DownEncoderBlock2D / UpDecoderBlock2D: resnets (the first changes the channels), then the Downsample2D (padded,
// floor(H / 2)) or the nearest-×2 Upsample2D, except in the last block.
struct SamplingBlockImpl : torch::nn::Module {
  SamplingBlockImpl(int64_t in, int64_t out, int64_t count, int64_t groups, bool down, bool resample) {
    resnets = register_module("resnets", torch::nn::ModuleList());
    for (int64_t i = 0; i < count; ++i) resnets->push_back(layers::ResnetBlock2D(i == 0 ? in : out, out, 0, groups, 1e-6));
    if (resample && down) downsamplers = register_module("downsamplers", torch::nn::ModuleList(layers::Downsample2D(out, 0)));
    if (resample && !down) upsamplers = register_module("upsamplers", torch::nn::ModuleList(layers::Upsample2D(out)));
  }
  torch::Tensor forward(torch::Tensor h) {
    for (const auto& r : *resnets) h = r->as<layers::ResnetBlock2DImpl>()->forward(h);
    if (downsamplers) h = downsamplers[0]->as<layers::Downsample2DImpl>()->forward(h);
    if (upsamplers) h = upsamplers[0]->as<layers::Upsample2DImpl>()->forward(h);
    return h;
  }
  torch::nn::ModuleList resnets{nullptr}, downsamplers{nullptr}, upsamplers{nullptr};
};
TORCH_MODULE(SamplingBlock);

// Encoder: conv_in → down blocks → mid block → GroupNorm → SiLU → conv_out to 2 · latent_channels (mean, logvar).
struct EncoderImpl : torch::nn::Module {
  explicit EncoderImpl(const VaeConfig& c) {
    const auto& boc = c.block_out_channels;
    conv_in = register_module("conv_in", layers::Conv2d(c.in_channels, boc[0], 3, 1, 1));
    down_blocks = register_module("down_blocks", torch::nn::ModuleList());
    for (size_t i = 0; i < boc.size(); ++i)
      down_blocks->push_back(SamplingBlock(i == 0 ? boc[0] : boc[i - 1], boc[i], c.layers_per_block, c.norm_num_groups,
                                           true, i + 1 < boc.size()));
    mid_block = register_module("mid_block", MidBlock(c));
    conv_norm_out = register_module("conv_norm_out", layers::GroupNorm(c.norm_num_groups, boc.back(), 1e-6));
    conv_out = register_module("conv_out", layers::Conv2d(boc.back(), 2 * c.latent_channels, 3, 1, 1));
  }
  torch::Tensor forward(const torch::Tensor& sample) {
    auto h = conv_in(sample);
    for (const auto& b : *down_blocks) h = b->as<SamplingBlockImpl>()->forward(h);
    return conv_out(torch::silu(conv_norm_out(mid_block(h))));
  }
  layers::Conv2d conv_in{nullptr}, conv_out{nullptr};
  torch::nn::ModuleList down_blocks{nullptr};
  MidBlock mid_block{nullptr};
  layers::GroupNorm conv_norm_out{nullptr};
};
TORCH_MODULE(Encoder);

// Decoder: conv_in → mid block → up blocks (layers_per_block + 1 resnets each, channels reversed) → GroupNorm →
// SiLU → conv_out.
struct DecoderImpl : torch::nn::Module {
  explicit DecoderImpl(const VaeConfig& c) {
    const auto& boc = c.block_out_channels;
    const size_t n = boc.size();
    conv_in = register_module("conv_in", layers::Conv2d(c.latent_channels, boc.back(), 3, 1, 1));
    mid_block = register_module("mid_block", MidBlock(c));
    up_blocks = register_module("up_blocks", torch::nn::ModuleList());
    for (size_t i = 0; i < n; ++i)
      up_blocks->push_back(SamplingBlock(boc[i == 0 ? n - 1 : n - i], boc[n - 1 - i], c.layers_per_block + 1,
                                         c.norm_num_groups, false, i + 1 < n));
    conv_norm_out = register_module("conv_norm_out", layers::GroupNorm(c.norm_num_groups, boc[0], 1e-6));
    conv_out = register_module("conv_out", layers::Conv2d(boc[0], c.out_channels, 3, 1, 1));
  }
  torch::Tensor forward(const torch::Tensor& z) {
    auto h = mid_block(conv_in(z));
    for (const auto& b : *up_blocks) h = b->as<SamplingBlockImpl>()->forward(h);
    return conv_out(torch::silu(conv_norm_out(h)));
  }
  layers::Conv2d conv_in{nullptr}, conv_out{nullptr};
  torch::nn::ModuleList up_blocks{nullptr};
  MidBlock mid_block{nullptr};
  layers::GroupNorm conv_norm_out{nullptr};
};
TORCH_MODULE(Decoder);

struct AutoencoderKLImpl : torch::nn::Module {
  explicit AutoencoderKLImpl(const VaeConfig& c) {
    encoder = register_module("encoder", Encoder(c));
    decoder = register_module("decoder", Decoder(c));
    const int64_t l = c.latent_channels;
    if (c.use_quant_conv) quant_conv = register_module("quant_conv", layers::Conv2d(2 * l, 2 * l, 1));
    if (c.use_post_quant_conv) post_quant_conv = register_module("post_quant_conv", layers::Conv2d(l, l, 1));
  }
  torch::Tensor encode(const torch::Tensor& sample) {
    auto moments = encoder(sample);
    return quant_conv ? quant_conv(moments) : moments;
  }
  torch::Tensor decode(const torch::Tensor& z) { return decoder(post_quant_conv ? post_quant_conv(z) : z); }
  Encoder encoder{nullptr};
  Decoder decoder{nullptr};
  layers::Conv2d quant_conv{nullptr}, post_quant_conv{nullptr};
};

}  // namespace
}  // namespace hf2onnx::vae

namespace hf2onnx {

std::shared_ptr<ExportModel> build_vae(const BuildContext& ctx) {
  using namespace vae;
  if (ctx.task != Task::TextToImage)
    throw Error("task '" + std::string(task_name(ctx.task)) + "' is not supported by AutoencoderKL (text-to-image)");
  const VaeConfig c = VaeConfig::from(ctx.config);
  auto model = std::make_shared<AutoencoderKLImpl>(c);
  auto m = std::make_shared<ExportModel>();
  m->task = ctx.task;
  m->module = model;
  const int64_t f = c.downsampling();
  const std::string image = std::to_string(c.in_channels), latent = std::to_string(c.latent_channels);
  ExportGraph& enc = m->graph(GraphKind::VaeEncoder);
  enc.inputs = {{"sample", torch::kFloat, {"batch_size", image, "sample_height", "sample_width"}}};
  enc.outputs = {{"latent_parameters", torch::kFloat,
                  {"batch_size", std::to_string(2 * c.latent_channels), "sample_height / " + std::to_string(f),
                   "sample_width / " + std::to_string(f)}}};
  enc.forward = [model](const std::vector<torch::Tensor>& in) { return std::vector<torch::Tensor>{model->encode(in[0])}; };
  // Both graphs at half the UNet's latent sizes (3 × 2 and 5 × 4 at the trace shapes: every level's size still
  // differs between the two traces), the encoder's images f times that: the VAE's full-resolution convolutions are
  // most of a trace's time.
  auto latent_size = [](const DimSizes& d) { return std::make_pair(d.at("height") / 2, d.at("width") / 2); };
  enc.example_inputs = [c, f, latent_size](const DimSizes& d) {
    torch::manual_seed(0);
    const auto [h, w] = latent_size(d);
    return std::vector<torch::Tensor>{torch::randn({d.at("batch_size"), c.in_channels, h * f, w * f})};
  };
  ExportGraph& dec = m->graph(GraphKind::VaeDecoder);
  dec.inputs = {{"latent_sample", torch::kFloat, {"batch_size", latent, "height", "width"}}};
  dec.outputs = {{"sample", torch::kFloat,
                  {"batch_size", std::to_string(c.out_channels), "height * " + std::to_string(f), "width * " + std::to_string(f)}}};
  dec.forward = [model](const std::vector<torch::Tensor>& in) { return std::vector<torch::Tensor>{model->decode(in[0])}; };
  dec.example_inputs = [c, latent_size](const DimSizes& d) {
    torch::manual_seed(0);
    const auto [h, w] = latent_size(d);
    return std::vector<torch::Tensor>{torch::randn({d.at("batch_size"), c.latent_channels, h, w})};
  };
  return m;
}

}  // namespace hf2onnx
