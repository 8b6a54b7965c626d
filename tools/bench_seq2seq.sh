#!/usr/bin/env bash
# Encoder-decoder benchmarks (random checkpoints made by build/make_checkpoint): t5-base-shaped (220M) and
# whisper-small-shaped (240M) — export wall time and peak RSS for all files (best of 3), the same with
# --quantize, and greedy decoding in ONNX Runtime (tools/ort_seq2seq.mjs with the merged decoder, 1 thread,
# batch 1, 32 new tokens; T5 on a 128-token input, Whisper on 30 s of features), FP32 and INT8.
# Writes the "seq2seq" section of docs/benchmarks.md.   tools/bench_seq2seq.sh [WORK_DIR]   (needs ~3 GB)
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/bench_lib.sh

mkdir -p "$work/t5-input" "$work/whisper-input"
node --input-type=module -e "
import { writeNpy } from './tools/npy.mjs';
const ids = BigInt64Array.from({ length: 128 }, (_, i) => BigInt(100 + ((i * 7919) % 30000)));
writeNpy('$work/t5-input/input_ids.npy', 'int64', [1, 128], ids);
writeNpy('$work/t5-input/attention_mask.npy', 'int64', [1, 128], BigInt64Array.from({ length: 128 }, () => 1n));
const f = Float32Array.from({ length: 80 * 3000 }, (_, i) => Math.sin(i * 0.37) * 0.5);
writeNpy('$work/whisper-input/input_features.npy', 'float32', [1, 80, 3000], f);"

rows=""; gens=""
for spec in "t5-base:0:t5-input" "whisper-small:50258:whisper-input"; do
  IFS=: read -r preset start input <<< "$spec"
  [ -f "$work/$preset/model.safetensors" ] || build/make_checkpoint "$preset" "$work/$preset"
  bytes=$(stat -c %s "$work/$preset/model.safetensors")
  runs=3
  measure "$preset export" "$work/$preset-onnx" build/hf2onnx export -q --no-verify --layout optimum "$work/$preset" "$work/$preset-onnx"
  wall="$best_wall ($all_walls)"; rss=$best_rss
  runs=1
  measure "$preset export --quantize" "$work/$preset-onnx" build/hf2onnx export -q --no-verify --layout optimum --quantize "$work/$preset" "$work/$preset-onnx"
  qwall=$best_wall; qrss=$best_rss
  files=$(ls "$work/$preset-onnx"/*.onnx | wc -l)
  rows+="| $preset | $(mb $bytes) MB | ${wall} s | $(mb $((rss * 1024))) MB ($(awk "BEGIN{printf \"%.2f\", $rss*1024/$bytes}")×) | ${qwall} s, $(mb $((qrss * 1024))) MB | $files |
"
  gen() { node tools/ort_seq2seq.mjs "$work/$preset-onnx" "$work/$input" 32 "$work/gen.npy" --start "$start" \
            --cache 12,64 --merged --threads 1 "$@" 2>&1 | tail -1; }
  fp32=$(gen); int8=$(gen --suffix _quantized)
  echo "$preset FP32: $fp32; INT8: $int8"
  gens+="| $preset | $fp32 | $int8 |
"
done

replace_section seq2seq <<MD
## Encoder-decoder models (tools/bench_seq2seq.sh, $(date -u +%Y-%m-%d))

CPU: $(lscpu | sed -n 's/^Model name: *//p') ($(lscpu | grep -o 'avx512_vnni\|amx_int8\|avx2' | sort -u | tr '\n' ' ')), $(nproc) cores. Export writes encoder_model, decoder_model,
decoder_with_past_model and decoder_model_merged (with --quantize also their four _quantized twins, each
checked against its FP32 file in ONNX Runtime).

| model | checkpoint | export wall: best (all 3 runs) | export peak RSS | export --quantize: wall, peak RSS | .onnx files |
|---|---|---|---|---|---|
${rows}
Targets: export ≤ 4 s and peak RSS ≤ 1× the checkpoint.

Greedy decoding in ONNX Runtime (\`tools/ort_seq2seq.mjs --merged\`, 1 intra-op thread, batch 1, 32 new
tokens; the encoder once on a 128-token input for T5, on 3000 frames for Whisper):

| model | FP32 | INT8 |
|---|---|---|
${gens}
MD
sed -n '/<!-- seq2seq -->/,/<!-- \/seq2seq -->/p' docs/benchmarks.md
