#!/usr/bin/env bash
# Today's LLM families (random checkpoints made by build/make_checkpoint):
#  - Qwen2-0.5B-shaped (tied lm_head, 2 KV heads): export and quantize wall time and peak RSS; greedy tokens/s in
#    ONNX Runtime, FP32 vs INT8 (1 thread, batch 1, 128-token prompt, 32 new tokens);
#  - Llama-1.1B-shaped (float32) and Mistral-7B-shaped in bfloat16, sharded (≈ 14.5 GB): export next to `cp -r`
#    of the checkpoint in alternating pairs (page cache warm), the ratio taken pair by pair; the 7B with
#    --keep-weight-dtype (16-bit weights as stored) and once as float32 (≈ 29 GB); quantization of the 7B; peak RSS
#    and minor page faults of each. The big files are deleted afterwards.
# Writes the "llm" section of docs/benchmarks.md.   tools/bench_llm.sh [WORK_DIR]   (needs ~50 GB of disk)
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/bench_lib.sh

faults() { sed -n 's/.*Minor (reclaiming a frame) page faults: //p' "$work/time.txt"; }
# The faults of an export's write stage: its -v lines say the process's count after each stage.
stage_faults() { sed -n "s/.*\] $1: .*, \([0-9]*\) minor page faults so far/\1/p" "$work/time.txt"; }
write_faults() { echo $(( $(stage_faults write) - $(stage_faults lower) )); }

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
# pairs N LABEL CHECKPOINT OUT [export options]: N alternating runs of `cp -r CHECKPOINT` and the export of it into
# OUT (each removes both outputs first, so neither's write-back lands in the other's run); sets cp_walls / ex_walls
# ("a / b / c"), ratios (export/cp, pair by pair), ratio_median, and ex_rss / ex_faults / ex_write_faults /
# cp_faults of the last pair. Each run starts 3 s after the removal and sync: on the virtual machines measured, memory
# freed in the guest is handed back to the host about 2 s later (free page reporting), and whichever command
# starts before that reuses it cheaply while the other pays for fresh pages (a 4.4 GB cp took 3.4 s or 11.4 s).
pairs() {
  local n=$1 label=$2 src=$3 out=$4 i cw ew list=""
  shift 4
  cp_walls=""; ex_walls=""; ratios=""
  for i in $(seq "$n"); do
    rm -rf "$out"; runs=1; settle=3
    measure "cp $label" "$work/copy" cp -r "$src" "$work/copy"
    cw=$best_wall; cp_faults=$(faults)
    rm -rf "$work/copy"
    measure "$label export" "$out" build/hf2onnx export -v --no-verify --layout optimum "$@" "$src" "$out"
    ew=$best_wall; ex_rss=$best_rss; ex_faults=$(faults); ex_write_faults=$(write_faults); settle=0
    cp_walls+="${cp_walls:+ / }$cw"; ex_walls+="${ex_walls:+ / }$ew"
    r=$(awk "BEGIN{printf \"%.2f\", $ew/$cw}"); ratios+="${ratios:+ / }$r"; list+="$r\n"
  done
  ratio_median=$(printf "$list" | sort -n | awk '{v[NR]=$1} END{print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}')
}

pairs 3 1.1b "$l" "$work/llama-onnx"
lcp_walls=$cp_walls; l_walls=$ex_walls; l_ratios=$ratios; l_ratio=$ratio_median; l_rss=$ex_rss
l_faults=$ex_faults; l_write_faults=$ex_write_faults; lcp_faults=$cp_faults
l_out=$(cat "$work/llama-onnx"/model.onnx* | wc -c)
rm -rf "$work/llama-onnx"

# --- Mistral-7B, bfloat16, 5 GB shards
m=$work/mistral-7b
[ -f "$m/model.safetensors.index.json" ] || build/make_checkpoint mistral-7b "$m" --bf16 --shard-gb 5
m_bytes=$(cat "$m"/*.safetensors | wc -c)
cat "$m"/*.safetensors > /dev/null  # page cache warm for both
runs=1
measure "mistral export (float32)" "$work/mistral-onnx" build/hf2onnx export -q --no-verify --layout optimum "$m" "$work/mistral-onnx"
mf_wall=$best_wall; mf_rss=$best_rss; mf_faults=$(faults)
mf_out=$(cat "$work/mistral-onnx"/model.onnx* | wc -c)
rm -rf "$work/mistral-onnx"
pairs 3 7b "$m" "$work/mistral-onnx" --keep-weight-dtype
cp_walls7=$cp_walls; m_walls=$ex_walls; m_ratios=$ratios; m_ratio=$ratio_median; m_rss=$ex_rss
m_faults=$ex_faults; m_write_faults=$ex_write_faults; cp_faults7=$cp_faults
m_out=$(cat "$work/mistral-onnx"/model.onnx* | wc -c)
runs=1
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

Export next to \`cp -r\` of the same checkpoint, page cache warm, in alternating pairs (cp, export, cp, export, ...;
each run removes both outputs, syncs and waits 3 s first); the ratio is taken pair by pair. Page faults and RSS are
the last run's. Any process that loads libtorch and traces the tiny Llama fixture takes ${tiny_faults} minor faults
(the export of models/llama), whatever the model's size; the trace of a bigger model adds a few thousand (its
activations). "While writing" is the write stage's share (the export's \`-v\` lines count faults after each stage).

| step | wall (each run) | export/cp per pair (median) | peak RSS | minor page faults, whole process (per GB written; exports: beyond the fixed ones) | of which while writing (per GB written) | written |
|---|---|---|---|---|---|---|
| \`cp -r\` of the 1.1B Llama (float32) | ${lcp_walls} s | | | ${lcp_faults} ($(per_gb $lcp_faults $l_bytes)) | all | $(gb $l_bytes) GB |
| export of it | ${l_walls} s | ${l_ratios} (**${l_ratio}**) | $(mb $((l_rss * 1024))) MB | ${l_faults} ($(beyond $l_faults $l_out)) | ${l_write_faults} ($(per_gb $l_write_faults $l_out)) | $(gb $l_out) GB |
| \`cp -r\` of the Mistral-7B-shaped (bfloat16, 5 GB shards) | ${cp_walls7} s | | | ${cp_faults7} ($(per_gb $cp_faults7 $m_bytes)) | all | $(gb $m_bytes) GB |
| export of it, \`--keep-weight-dtype\` (external data, bfloat16) | ${m_walls} s | ${m_ratios} (**${m_ratio}**) | $(mb $((m_rss * 1024))) MB | ${m_faults} ($(beyond $m_faults $m_out)) | ${m_write_faults} ($(per_gb $m_write_faults $m_out)) | $(gb $m_out) GB |
| quantize of that export | ${mq_wall} s | | $(mb $((mq_rss * 1024))) MB | ${mq_faults} ($(per_gb $mq_faults $mq_out)) | | $(gb $mq_out) GB |
| export of the 7B as float32 (the default; external data), one run | ${mf_wall} s | | $(mb $((mf_rss * 1024))) MB | ${mf_faults} ($(beyond $mf_faults $mf_out)) | | $(gb $mf_out) GB |

Targets: peak RSS ≤ 2 GB for the export and for the quantization; export wall ≤ 2× the \`cp\` time. The default
7B export writes twice the checkpoint's bytes (bfloat16 becomes float32), so its floor is writing 29 GB;
\`--keep-weight-dtype\` writes the checkpoint's bytes.
MD
sed -n '/<!-- llm -->/,/<!-- \/llm -->/p' docs/benchmarks.md
