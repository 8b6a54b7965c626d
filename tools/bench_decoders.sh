#!/usr/bin/env bash
# Decoder benchmarks (random checkpoints made by build/make_checkpoint):
#  - GPT-2 124M (safetensors): export wall time and peak RSS (best of 3);
#  - a ~1.1B Llama (TinyLlama's shape; 4.4 GB float32 safetensors): export with external data, quantize,
#    peak RSS of each; greedy tokens/s in ORT (1 thread, batch 1, 128-token prompt, 32 new tokens), FP32 and INT8.
# Writes the "decoders" section of docs/benchmarks.md.   tools/bench_decoders.sh [WORK_DIR]   (needs ~12 GB)
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/bench_lib.sh

[ -f "$work/gpt2/model.safetensors" ] || build/make_checkpoint gpt2 "$work/gpt2"
gpt2_bytes=$(stat -c %s "$work/gpt2/model.safetensors")
runs=3
measure "gpt2 export" "$work/gpt2-onnx" build/hf2onnx export -q --no-verify --layout optimum "$work/gpt2" "$work/gpt2-onnx"
gpt2_wall=$best_wall; gpt2_rss=$best_rss

[ -f "$work/llama-1.1b/model.safetensors" ] || build/make_checkpoint llama-1.1b "$work/llama-1.1b"
llama_bytes=$(stat -c %s "$work/llama-1.1b/model.safetensors")
runs=1
measure "llama export" "$work/llama-onnx" build/hf2onnx export -q --no-verify --layout optimum "$work/llama-1.1b" "$work/llama-onnx"
llama_wall=$best_wall; llama_rss=$best_rss
fp32_bytes=$(( $(stat -c %s "$work/llama-onnx/model.onnx") + $(stat -c %s "$work/llama-onnx/model.onnx_data") ))
measure "llama quantize" "$work/llama-onnx/model_quantized.onnx" \
  build/hf2onnx quantize -q "$work/llama-onnx/model.onnx" "$work/llama-onnx/model_quantized.onnx"
q_wall=$best_wall; q_rss=$best_rss
int8_files=$(ls "$work/llama-onnx"/model_quantized.onnx*)
int8_bytes=$(cat $int8_files | wc -c)

# A 128-token prompt (batch 1), then 32 greedy tokens with the cache.
make_prompt128 "$work/prompt128"
gen() { node tools/ort_generate.mjs "$1" "$work/prompt128" 32 "$work/gen.npy" --cache 4,64 --threads 1 2>&1 | tail -1; }
fp32_gen=$(gen "$work/llama-onnx/model.onnx"); echo "FP32: $fp32_gen"
int8_gen=$(gen "$work/llama-onnx/model_quantized.onnx"); echo "INT8: $int8_gen"

replace_section decoders <<MD
## Decoders (tools/bench_decoders.sh, $(date -u +%Y-%m-%d))

| model | checkpoint | export wall | export peak RSS | target |
|---|---|---|---|---|
| GPT-2 124M (GPT2LMHeadModel, tied lm_head) | $(mb $gpt2_bytes) MB | ${gpt2_wall} s (best of 3) | $(mb $((gpt2_rss * 1024))) MB ($(awk "BEGIN{printf \"%.2f\", $gpt2_rss*1024/$gpt2_bytes}")×) | ≤ 3 s |
| Llama 1.1B (hidden 2048, 22 layers, 32 heads, 4 KV heads) | $(mb $llama_bytes) MB | ${llama_wall} s | $(mb $((llama_rss * 1024))) MB ($(awk "BEGIN{printf \"%.2f\", $llama_rss*1024/$llama_bytes}")×) | ≤ 1.3× the checkpoint |

The 1.1B export writes model.onnx + model.onnx_data ($(mb $fp32_bytes) MB). \`hf2onnx quantize\` on it: ${q_wall} s,
peak RSS $(mb $((q_rss * 1024))) MB, INT8 files $(mb $int8_bytes) MB ($(awk "BEGIN{printf \"%.3f\", $int8_bytes/$fp32_bytes}")× FP32).

Greedy generation in ONNX Runtime (\`tools/ort_generate.mjs\`, 1 intra-op thread, batch 1, 128-token prompt,
32 new tokens with the KV cache):

| 1.1B Llama | prefill (128 tokens) and decode speed |
|---|---|
| FP32 | ${fp32_gen} |
| INT8 (per-tensor) | ${int8_gen} |
MD
sed -n '/<!-- decoders -->/,/<!-- \/decoders -->/p' docs/benchmarks.md
