#!/usr/bin/env bash
# Stable Diffusion (issue 14): a random SD 1.5-shaped diffusers pipeline made by build/make_checkpoint (CLIP text
# 123M, UNet 860M, VAE 84M; float16 safetensors, as most hub copies are) exported into Optimum's layout — wall
# time and peak RSS (best of 3), the same with --quantize, and ONNX Runtime's latency for one UNet step at 64×64
# latents (batch 1, 77 text tokens), FP32 and INT8, 1 and 2 threads. Writes the "stable-diffusion" section of
# docs/benchmarks.md.   tools/bench_sd.sh [WORK_DIR]   (needs ~9 GB of disk)
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/bench_lib.sh

src=$work/sd-1.5 out=$work/sd-1.5-onnx
[ -f "$src/unet/diffusion_pytorch_model.safetensors" ] || build/make_checkpoint sd-1.5 "$src" --fp16
bytes=$(du -sb --apparent-size "$src" | cut -f1)
runs=3
measure "sd-1.5 export" "$out" build/hf2onnx export -q --no-verify "$src" "$out"
wall="$best_wall ($all_walls)"; rss=$best_rss
runs=1
measure "sd-1.5 export --quantize" "$out" build/hf2onnx export -q --no-verify --quantize "$src" "$out"
qwall=$best_wall; qrss=$best_rss
lats=""
for threads in 1 2; do
  { read fp32 fp32m; read int8 int8m; } <<<"$(node tools/bench_ort.mjs 1 77 3 "$out/unet/model.onnx" \
                                              "$out/unet/model_quantized.onnx" --threads "$threads" --latent-size 64)"
  echo "UNet step, ORT $threads thread(s): FP32 median $fp32 ms (min $fp32m), INT8 median $int8 ms (min $int8m)"
  lats+="| $threads | $fp32 ($fp32m) | $int8 ($int8m) |
"
done
# Why the VAE stays float32: its INT8 twin (hf2onnx quantize, the same quantizer) against it, decoding 32×32 latents.
build/hf2onnx quantize -q "$out/vae_decoder/model.onnx" "$work/vae_decoder_int8.onnx"
vae_fp32=$(stat -c %s "$out/vae_decoder/model.onnx"); vae_int8=$(stat -c %s "$work/vae_decoder_int8.onnx")
vae_matmuls=$(build/hf2onnx inspect "$work/vae_decoder_int8.onnx" | grep -o 'MatMulInteger [0-9]*' | head -1)
{ read vf vfm; read vq vqm; } <<<"$(node tools/bench_ort.mjs 1 77 7 "$out/vae_decoder/model.onnx" "$work/vae_decoder_int8.onnx" \
                                        --threads 2 --latent-size 32)"
echo "VAE decoder 32x32 latents, 2 threads: FP32 $vf ms, INT8 $vq ms; $vae_matmuls; $vae_fp32 -> $vae_int8 bytes"
rm -f "$work/vae_decoder_int8.onnx"
sizes=$(cd "$out" && du -b --apparent-size text_encoder/model.onnx unet/model.onnx_data unet/model_quantized.onnx* vae_encoder/model.onnx vae_decoder/model.onnx | awk '{printf "%s%s %.0f MB", sep, $2, $1/1048576; sep=", "}')

replace_section stable-diffusion <<MD
## Stable Diffusion (tools/bench_sd.sh, $(date -u +%Y-%m-%d))

CPU: $(lscpu | sed -n 's/^Model name: *//p') ($(lscpu | grep -o 'avx512_vnni\|amx_int8\|avx2' | sort -u | tr '\n' ' ')), $(nproc) cores. A random pipeline from
\`build/make_checkpoint sd-1.5 DIR --fp16\`, shaped like runwayml/stable-diffusion-v1-5 (text encoder, UNet, VAE in
float16 safetensors: $(mb $bytes) MB), exported with \`hf2onnx export --no-verify\` into text_encoder/, unet/ (external
data), vae_encoder/, vae_decoder/ in float32 ($sizes).

| | wall: best (all runs) | peak RSS |
|---|---|---|
| export | ${wall} s | $(mb $((rss * 1024))) MB ($(awk "BEGIN{printf \"%.2f\", $rss*1024/$bytes}")× the fp16 checkpoint) |
| export --quantize (text encoder and UNet INT8) | ${qwall} s | $(mb $((qrss * 1024))) MB |

Targets: export ≤ 30 s and peak RSS ≤ 1× the fp16 checkpoint. Components are exported one after the other, each
weight streamed from the checkpoint's map into its file (float16 → float32 as it is written). The --quantize peak
is the largest process of the run, the ONNX Runtime process that compares each INT8 file with its FP32 file.

One UNet step in ONNX Runtime: latents [1, 4, 64, 64] (a 512×512 image), 77 text tokens, median (min) ms of 3
runs after warm-up; a guided step runs batch 2.

| threads | FP32 ms | INT8 ms |
|---|---|---|
${lats}
The quantizer makes the MatMuls INT8 and leaves convolutions in float: most of the UNet's weights and FLOPs are
convolutions, hence the INT8 file's size and speed-up above. The VAE is convolutions but for its mid-block
attention, so it stays float32: its decoder's INT8 twin (\`hf2onnx quantize\`; ${vae_matmuls:-no MatMulInteger})
is $(mb $vae_fp32) MB → $(mb $vae_int8) MB, and decodes 32×32 latents (2 threads, median (min) of 7) in $vq ($vqm) ms
against $vf ($vfm) ms in float32.
MD
