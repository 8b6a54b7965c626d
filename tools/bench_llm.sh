#!/usr/bin/env bash
# Today's LLM families (random checkpoints made by build/make_checkpoint):
#  - Qwen2-0.5B-shaped (tied lm_head, 2 KV heads): export and quantize wall time and peak RSS; greedy tokens/s in
#    ONNX Runtime, FP32 vs INT8 (1 thread, batch 1, 128-token prompt, 32 new tokens);
#  - Mistral-7B-shaped in bfloat16, sharded (≈ 14.5 GB): export (external data, ≈ 29 GB of float32) and quantize,
#    peak RSS and minor page faults of each, next to `cp` of the checkpoint (page cache warm). The big files are
#    deleted afterwards.
# Writes the "llm" section of docs/benchmarks.md.   tools/bench_llm.sh [WORK_DIR]   (needs ~60 GB of disk)
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/bench_lib.sh

faults() { sed -n 's/.*Minor (reclaiming a frame) page faults: //p' "$work/time.txt"; }

# --- Qwen2-0.5B
[ -f "$work/qwen2-0.5b/model.safetensors" ] || build/make_checkpoint qwen2-0.5b "$work/qwen2-0.5b"
q_bytes=$(stat -c %s "$work/qwen2-0.5b/model.safetensors")
runs=3
measure "qwen2 export" "$work/qwen2-onnx" build/hf2onnx export -q --no-verify --layout optimum "$work/qwen2-0.5b" "$work/qwen2-onnx"
q_wall="$best_wall ($all_walls)"; q_rss=$best_rss
runs=1
measure "qwen2 quantize" "$work/qwen2-onnx/model_quantized.onnx" \
  build/hf2onnx quantize -q "$work/qwen2-onnx/model.onnx" "$work/qwen2-onnx/model_quantized.onnx"
qq_wall=$best_wall; qq_rss=$best_rss
make_prompt128 "$work/prompt128"
gen() { node tools/ort_generate.mjs "$1" "$work/prompt128" 32 "$work/gen.npy" --cache 2,64 --threads 1 2>&1 | tail -1; }
q_fp32=$(gen "$work/qwen2-onnx/model.onnx"); echo "qwen2 FP32: $q_fp32"
q_int8=$(gen "$work/qwen2-onnx/model_quantized.onnx"); echo "qwen2 INT8: $q_int8"

# --- Llama 1.1B (float32, 4.4 GB): export next to cp, page cache warm
l=$work/llama-1.1b
[ -f "$l/model.safetensors" ] || build/make_checkpoint llama-1.1b "$l"
l_bytes=$(stat -c %s "$l/model.safetensors")
cat "$l/model.safetensors" > /dev/null
runs=1  # a process's fixed page faults (libtorch's start-up, the tiny fixture's trace): the export of models/llama
measure "tiny llama export" "$work/tiny-onnx" build/hf2onnx export -q --no-verify --layout optimum models/llama "$work/tiny-onnx"
tiny_faults=$(faults)
rm -rf "$work/tiny-onnx"
runs=3
measure "cp 1.1b" "$work/llama-copy" cp -r "$l" "$work/llama-copy"
lcp_wall="$best_wall ($all_walls)"; lcp_faults=$(faults)
rm -rf "$work/llama-copy"
measure "llama export" "$work/llama-onnx" build/hf2onnx export -q --no-verify --layout optimum "$l" "$work/llama-onnx"
l_wall="$best_wall ($all_walls)"; l_rss=$best_rss; l_faults=$(faults)
l_out=$(cat "$work/llama-onnx"/model.onnx* | wc -c)
rm -rf "$work/llama-onnx"

# --- Mistral-7B, bfloat16, 5 GB shards
m=$work/mistral-7b
[ -f "$m/model.safetensors.index.json" ] || build/make_checkpoint mistral-7b "$m" --bf16 --shard-gb 5
m_bytes=$(cat "$m"/*.safetensors | wc -c)
cat "$m"/*.safetensors > /dev/null  # page cache warm for both
runs=1
measure "cp checkpoint" "$work/mistral-copy" cp -r "$m" "$work/mistral-copy"
cp_wall=$best_wall; cp_faults=$(faults)
rm -rf "$work/mistral-copy"
measure "mistral export" "$work/mistral-onnx" build/hf2onnx export -q --no-verify --layout optimum "$m" "$work/mistral-onnx"
m_wall=$best_wall; m_rss=$best_rss; m_faults=$(faults)
m_out=$(cat "$work/mistral-onnx"/model.onnx* | wc -c)
measure "mistral quantize" "$work/mistral-onnx/model_quantized.onnx" \
  build/hf2onnx quantize -q "$work/mistral-onnx/model.onnx" "$work/mistral-onnx/model_quantized.onnx"
mq_wall=$best_wall; mq_rss=$best_rss; mq_faults=$(faults)
mq_out=$(cat "$work/mistral-onnx"/model_quantized.onnx* | wc -c)
rm -rf "$work/mistral-onnx" "$m"

gb() { awk "BEGIN{printf \"%.1f\", $1/1e9}"; }
per_gb() { awk "BEGIN{printf \"%.0f\", $1/($2/1e9)}"; }
beyond() { awk "BEGIN{v = $1 - $tiny_faults; printf \"%.0f\", (v < 0 ? 0 : v)/($2/1e9)}"; }  # exports: minus the fixed faults
replace_section llm <<MD
## LLM families (tools/bench_llm.sh, $(date -u +%Y-%m-%d))

CPU: $(lscpu | sed -n 's/^Model name: *//p') ($(lscpu | grep -o 'avx512_vnni\|amx_int8\|avx2' | sort -u | tr '\n' ' ')), $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GB.

| Qwen2-0.5B-shaped (tied, 2 KV heads) | wall | peak RSS |
|---|---|---|
| export ($(mb $q_bytes) MB checkpoint) | ${q_wall} s | $(mb $((q_rss * 1024))) MB |
| quantize | ${qq_wall} s | $(mb $((qq_rss * 1024))) MB |

Greedy generation (\`tools/ort_generate.mjs\`, 1 thread, batch 1, 128-token prompt, 32 new tokens): FP32 ${q_fp32};
INT8 ${q_int8}.

Export next to \`cp -r\` of the same checkpoint, page cache warm:

Walls are best (all runs); page faults are the last run's. Any process that loads libtorch and traces the tiny
Llama fixture takes ${tiny_faults} minor faults (the export of models/llama), whatever the model's size.

| step | wall | peak RSS | minor page faults (per GB written; exports: beyond the fixed ones) | written |
|---|---|---|---|---|
| \`cp -r\` of the 1.1B Llama (float32) | ${lcp_wall} s | | ${lcp_faults} ($(per_gb $lcp_faults $l_bytes)) | $(gb $l_bytes) GB |
| export of it | ${l_wall} s | $(mb $((l_rss * 1024))) MB | ${l_faults} ($(beyond $l_faults $l_out)) | $(gb $l_out) GB |
| \`cp -r\` of the Mistral-7B-shaped (bfloat16, 5 GB shards) | ${cp_wall} s | | ${cp_faults} ($(per_gb $cp_faults $m_bytes)) | $(gb $m_bytes) GB |
| export of it (external data, float32) | ${m_wall} s | $(mb $((m_rss * 1024))) MB | ${m_faults} ($(beyond $m_faults $m_out)) | $(gb $m_out) GB |
| quantize | ${mq_wall} s | $(mb $((mq_rss * 1024))) MB | ${mq_faults} ($(per_gb $mq_faults $mq_out)) | $(gb $mq_out) GB |

Targets: peak RSS ≤ 2 GB for the export and for the quantization; export wall ≤ 2× the \`cp\` time (the 7B export
writes twice the bytes: bfloat16 becomes float32).
MD
sed -n '/<!-- llm -->/,/<!-- \/llm -->/p' docs/benchmarks.md
