# Shared by the benchmark scripts, sourced from the project root: installs what the set-up installs, and makes the
# work folder $work (the script's first argument, default /tmp/hf2onnx-bench). measure needs $runs. The scripts
# export with --layout optimum (every file at the root of the output folder; the layout does not change the work)
# and --no-verify (the export itself; what the verify stage adds is measured by tools/bench_verify.sh).
tools/setup.sh >/dev/null
work=${1:-/tmp/hf2onnx-bench}
mkdir -p "$work"

# measure LABEL CLEANUP_PATH COMMAND...: runs COMMAND $runs times under /usr/bin/time -v (removing
# CLEANUP_PATH first, then waiting $settle seconds if set); sets best_wall (lowest seconds), all_walls ("a / b / c")
# and best_rss (highest KB).
measure() {
  local label=$1 cleanup=$2 wall rss
  shift 2
  best_wall=""; best_rss=""; all_walls=""
  for i in $(seq "$runs"); do
    rm -rf "$cleanup"
    sync  # the previous run's output written back first, so that its writeback does not slow this run
    sleep "${settle:-0}"
    /usr/bin/time -v "$@" 2> "$work/time.txt"
    wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$work/time.txt" | awk -F: '{print ($1*60)+$2}')
    rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$work/time.txt")
    echo "$label run $i: ${wall} s, peak RSS ${rss} KB"
    all_walls+="${all_walls:+ / }${wall}"
    if [ -z "$best_wall" ] || awk "BEGIN{exit !($wall < $best_wall)}"; then best_wall=$wall; fi
    if [ -z "$best_rss" ] || [ "$rss" -gt "$best_rss" ]; then best_rss=$rss; fi
  done
}

# replace_section NAME < text: puts the text between <!-- NAME --> and <!-- /NAME --> in docs/benchmarks.md
# (appending the section when it is not there yet), leaving the other sections as they are.
replace_section() {
  local name=$1 file=docs/benchmarks.md body
  body=$(cat)
  [ -f "$file" ] || printf '# Benchmarks\n' > "$file"
  if ! grep -q "<!-- $name -->" "$file"; then printf '\n<!-- %s -->\n<!-- /%s -->\n' "$name" "$name" >> "$file"; fi
  awk -v name="$name" -v body="$body" '
    $0 == "<!-- " name " -->" { print; print body; skip = 1; next }
    $0 == "<!-- /" name " -->" { skip = 0 }
    !skip { print }' "$file" > "$file.tmp" && mv "$file.tmp" "$file"
}

mb() { awk "BEGIN{printf \"%.1f\", $1/1048576}"; }

# make_prompt128 DIR: input_ids / attention_mask .npy of one 128-token prompt (batch 1) in DIR.
make_prompt128() {
  mkdir -p "$1"
  node --input-type=module -e "
import { writeNpy } from './tools/npy.mjs';
const ids = BigInt64Array.from({ length: 128 }, (_, i) => BigInt(100 + ((i * 7919) % 30000)));
writeNpy('$1/input_ids.npy', 'int64', [1, 128], ids);
writeNpy('$1/attention_mask.npy', 'int64', [1, 128], BigInt64Array.from({ length: 128 }, () => 1n));"
}

# measure_tree LABEL CLEANUP_PATH COMMAND...: like measure (one run), for a command that starts other processes
# (the verify stage's ONNX Runtime): the peak of the summed RSS of all its processes, sampled every 50 ms
# (tree_rss, KB), and the wall time (tree_wall, s).
measure_tree() {
  local label=$1 cleanup=$2 start sid peak=0 now
  shift 2
  rm -rf "$cleanup"
  start=$(date +%s.%N)
  setsid "$@" &
  sid=$!
  while kill -0 "$sid" 2>/dev/null; do
    now=$({ ps -o rss= -s "$sid" 2>/dev/null || true; } | awk '{s += $1} END {print s + 0}')  # ps fails once it has exited
    if [ "$now" -gt "$peak" ]; then peak=$now; fi
    sleep 0.05
  done
  wait "$sid"
  tree_wall=$(awk "BEGIN{printf \"%.2f\", $(date +%s.%N) - $start}")
  tree_rss=$peak
  echo "$label: ${tree_wall} s, peak RSS of all processes ${tree_rss} KB"
}
