#!/usr/bin/env bash
# Export benchmark on a random bert-base-sized BertForSequenceClassification checkpoint (safetensors):
# wall time and peak RSS of `hf2onnx export`, measured with /usr/bin/time -v. Writes docs/benchmarks.md.
#   tools/bench.sh [WORK_DIR]     (default /tmp/hf2onnx-bench; needs ~1 GB)
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh >/dev/null
work=${1:-/tmp/hf2onnx-bench}
mkdir -p "$work"
[ -f "$work/bert-base/model.safetensors" ] || build/make_checkpoint bert-base "$work/bert-base"
ckpt_bytes=$(stat -c %s "$work/bert-base/model.safetensors")

runs=3
best_wall=""; best_rss=""
for i in $(seq $runs); do
  rm -rf "$work/bert-base-onnx"
  /usr/bin/time -v build/hf2onnx export -q "$work/bert-base" "$work/bert-base-onnx" 2> "$work/time.txt"
  wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$work/time.txt" | awk -F: '{print ($1*60)+$2}')
  rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$work/time.txt")
  echo "run $i: ${wall} s, peak RSS ${rss} KB"
  if [ -z "$best_wall" ] || awk "BEGIN{exit !($wall < $best_wall)}"; then best_wall=$wall; fi
  if [ -z "$best_rss" ] || [ "$rss" -gt "$best_rss" ]; then best_rss=$rss; fi
done
onnx_bytes=$(stat -c %s "$work/bert-base-onnx/model.onnx")
ratio=$(awk "BEGIN{printf \"%.2f\", $best_rss*1024/$ckpt_bytes}")

cat > docs/benchmarks.md <<MD
# Benchmarks

Measured by \`tools/bench.sh\` on $(date -u +%Y-%m-%d), $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'),
libtorch $(dpkg-query -W -f='${Version}' libtorch-dev) with $(readlink -f /etc/alternatives/libblas.so.3-x86_64-linux-gnu | grep -q openblas && echo OpenBLAS || echo reference BLAS).

## Export: bert-base-sized BertForSequenceClassification

Random checkpoint made by \`build/make_checkpoint bert-base\` (hidden 768, 12 layers, vocab 30522;
safetensors, $(awk "BEGIN{printf \"%.1f\", $ckpt_bytes/1048576}") MB). \`hf2onnx export\` (opset 17), best wall time and highest peak RSS of $runs runs
(\`/usr/bin/time -v\`), page cache warm.

| metric | value | target |
|---|---|---|
| wall time | ${best_wall} s | ≤ 3 s |
| peak RSS | $(awk "BEGIN{printf \"%.0f\", $best_rss/1024}") MB (${ratio}× the checkpoint) | ≤ 1.5× the checkpoint |
| model.onnx | $(awk "BEGIN{printf \"%.1f\", $onnx_bytes/1048576}") MB | |

For scale (from the issue, same machine): transformers + torch.onnx.export takes ~18 s and 2.4 GB.
MD
cat docs/benchmarks.md
