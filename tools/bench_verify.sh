#!/usr/bin/env bash
# The verify stage's cost (random checkpoints made by build/make_checkpoint): bert-base-shaped (110M) and
# llama-1.1b-shaped exports with and without it — wall time and the peak of the summed RSS of hf2onnx and its
# ONNX Runtime processes (sampled every 50 ms), best of 3 walls — and `hf2onnx verify` of the folder alone.
# Writes the "verify" section of docs/benchmarks.md.   tools/bench_verify.sh [WORK_DIR]   (needs ~14 GB)
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/bench_lib.sh

rows=""
for preset in bert-base llama-1.1b; do
  [ -f "$work/$preset/config.json" ] || build/make_checkpoint "$preset" "$work/$preset"
  bytes=$(du -sb "$work/$preset" | cut -f1)
  for mode in --no-verify ""; do
    best=""; rss=0; walls=""
    for i in 1 2 3; do
      measure_tree "$preset export $mode run $i" "$work/$preset-v" build/hf2onnx export -q $mode --layout optimum "$work/$preset" "$work/$preset-v"
      walls+="${walls:+ / }$tree_wall"
      if [ -z "$best" ] || awk "BEGIN{exit !($tree_wall < $best)}"; then best=$tree_wall; fi
      if [ "$tree_rss" -gt "$rss" ]; then rss=$tree_rss; fi
    done
    if [ -n "$mode" ]; then plain_wall=$best; plain_rss=$rss; plain_walls=$walls; else wall=$best; vrss=$rss; vwalls=$walls; fi
  done
  measure_tree "$preset verify OUT" /nonexistent build/hf2onnx verify -q "$work/$preset-v"
  self_wall=$tree_wall; self_rss=$tree_rss
  rows+="| $preset | $(mb $bytes) MB | $plain_wall ($plain_walls) s, $(mb $((plain_rss * 1024))) MB | $wall ($vwalls) s, $(mb $((vrss * 1024))) MB | $(awk "BEGIN{printf \"%.2f\", $wall - $plain_wall}") s | $self_wall s, $(mb $((self_rss * 1024))) MB |
"
done

replace_section verify <<MD
## The verify stage (tools/bench_verify.sh, $(date -u +%Y-%m-%d))

CPU: $(lscpu | sed -n 's/^Model name: *//p') ($(lscpu | grep -o 'avx512_vnni\|amx_int8\|avx2' | sort -u | tr '\n' ' ')), $(nproc) cores. Random float32 checkpoints
from \`build/make_checkpoint\`. Every export now ends with the verify stage: each graph in ONNX Runtime at two
shapes (batch 1 × 5 tokens with 6 past, batch 4 × 7 without past) against libtorch eager of the same modules, and a
decoder's prefill + 2 cached steps against one call. Peak RSS is the largest sum over hf2onnx and the ONNX Runtime
(node) process it starts, sampled every 50 ms; wall times are the best of 3 runs (all three in brackets).

| model | checkpoint | export --no-verify: wall, peak RSS | export (verify on): wall, peak RSS | verify adds | \`hf2onnx verify OUT\` (against itself): wall, peak RSS |
|---|---|---|---|---|---|
${rows}
Memory plan: the stage runs libtorch's forward first (bf16 / fp16 weights converted to float32 for it, then
freed) and ONNX Runtime after, so it needs about one float32 copy of the model; when the float32 weights × 1.5 +
512 MB exceed MemAvailable, the export is written and the stage is skipped with a warning that says so (a
Mistral-7B-shaped model, 29 GB in float32, on this 23 GB machine). \`hf2onnx verify OUT_DIR MODEL_DIR\` on a
larger machine verifies it later.
MD
