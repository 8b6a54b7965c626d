#!/usr/bin/env bash
# Speech and vision encoders (random checkpoints made by build/make_checkpoint): wav2vec2-base-shaped
# Wav2Vec2ForCTC (95M) and clip-vit-base-patch32-shaped CLIPModel (151M) — export wall time and peak RSS
# (best of 3), the same with --quantize, and ONNX Runtime latency FP32 vs INT8 (1 thread: wav2vec2 on 10 s of
# 16 kHz audio, CLIP on one image and one 16-token text). Writes the "speech-vision" section of
# docs/benchmarks.md.   tools/bench_vision_audio.sh [WORK_DIR]   (needs ~3 GB)
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/bench_lib.sh

rows=""; lats=""
for spec in "wav2vec2-base:160000" "clip-vit-base-patch32:16"; do
  IFS=: read -r preset seq <<< "$spec"
  [ -f "$work/$preset/model.safetensors" ] || build/make_checkpoint "$preset" "$work/$preset"
  bytes=$(stat -c %s "$work/$preset/model.safetensors")
  runs=3
  measure "$preset export" "$work/$preset-onnx" build/hf2onnx export -q --no-verify --layout optimum "$work/$preset" "$work/$preset-onnx"
  wall="$best_wall ($all_walls)"; rss=$best_rss
  runs=1
  measure "$preset export --quantize" "$work/$preset-onnx" build/hf2onnx export -q --no-verify --layout optimum --quantize "$work/$preset" "$work/$preset-onnx"
  qwall=$best_wall; qrss=$best_rss
  rows+="| $preset | $(mb $bytes) MB | ${wall} s | $(mb $((rss * 1024))) MB ($(awk "BEGIN{printf \"%.2f\", $rss*1024/$bytes}")×) | ${qwall} s, $(mb $((qrss * 1024))) MB |
"
  { read fp32 fp32m; read int8 int8m; } <<<"$(node tools/bench_ort.mjs 1 "$seq" 10 "$work/$preset-onnx/model.onnx" \
                                              "$work/$preset-onnx/model_quantized.onnx" --threads 1)"
  echo "$preset ORT 1 thread: FP32 median $fp32 ms (min $fp32m), INT8 median $int8 ms (min $int8m)"
  lats+="| $preset | $fp32 ($fp32m) | $int8 ($int8m) |
"
done

replace_section speech-vision <<MD
## Speech and vision encoders (tools/bench_vision_audio.sh, $(date -u +%Y-%m-%d))

CPU: $(lscpu | sed -n 's/^Model name: *//p') ($(lscpu | grep -o 'avx512_vnni\|amx_int8\|avx2' | sort -u | tr '\n' ' ')), $(nproc) cores. Random checkpoints
from \`build/make_checkpoint\` (safetensors, float32): a Wav2Vec2ForCTC shaped like facebook/wav2vec2-base-960h
and a CLIPModel shaped like openai/clip-vit-base-patch32. Export writes \`model.onnx\` (with --quantize also
\`model_quantized.onnx\`, checked against it in ONNX Runtime).

| model | checkpoint | export wall: best (all 3 runs) | export peak RSS | export --quantize: wall, peak RSS |
|---|---|---|---|---|
${rows}
Targets: export ≤ 2 s and peak RSS ≤ 1× the checkpoint. The --quantize peak is the largest process of the run: the
ONNX Runtime (node) process of the INT8 check, which loads the FP32 and the INT8 model.

The export's trace runs the forward twice (CLIP: 5 images of 50 patches and 5 texts through 24 layers). Until
this run libtorch's OpenBLAS used its generic SSE3 kernels on this virtual CPU, which it does not recognise:
CLIP's trace took 1.13-1.46 s (4 runs) and the export 2.7-2.9 s. hf2onnx now sets \`OPENBLAS_CORETYPE\` from the
CPU's instruction sets before it loads libtorch (SkylakeX with AVX-512, Haswell with AVX2 + FMA; a value the
user set wins): trace 0.46-0.55 s; forcing Haswell gave 0.67-0.87 s.

ONNX Runtime, 1 intra-op thread, batch 1, median (min) ms of 10 runs: wav2vec2 on 10 s of 16 kHz audio
(160000 samples, 499 frames); CLIP on one 224×224 image and one 16-token text. The INT8 files keep the
convolutions in float (wav2vec2's feature encoder is most of its FLOPs).

| model | FP32 ms | INT8 ms |
|---|---|---|
${lats}
MD
