#!/usr/bin/env bash
# Builds the fuzz targets of tools/fuzz/fuzz_readers.cpp with libFuzzer + AddressSanitizer + UBSan
# (clang) and runs one of them for SECONDS (default 120), seeded with the shipped checkpoints and with
# the crafted files the unit tests leave in build/tests/tmp. Not part of the test command (it needs
# clang and minutes); run it after changing a reader. Runs one fuzzer on one core.
#   tools/fuzz/run.sh TARGET [SECONDS]     TARGET: safetensors torch_bin pickle onnx config
#   tools/fuzz/run.sh [SECONDS]            every target in turn, SECONDS each
#   tools/fuzz/run.sh build                builds every target, runs none
# Everything (binaries, corpora, crash-*/leak-*/oom-* artifacts) goes to build-fuzz/.
# FUZZ_AMPLIFICATION_SEED=0 leaves the 512 KB amplification seed out of the pickle target (its corpus
# then stays small and runs ~100x faster; use a fresh corpus directory: FUZZ_CORPUS=name).
set -euo pipefail
cd "$(dirname "$0")/../.."
targets="safetensors torch_bin pickle onnx config"
if [ $# -eq 0 ] || [[ "$1" =~ ^[0-9]+$ ]]; then  # tools/fuzz/run.sh [SECONDS]: every target in turn
  for t in $targets; do "$0" "$t" "${1:-120}"; done
  exit 0
fi
target=$1
seconds=${2:-120}
out=build-fuzz
mkdir -p "$out/obj"

# The readers, compiled once with the sanitizers (again when a source is newer than its object).
flags="-std=c++17 -g -O1 -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
       -DONNX_NAMESPACE=onnx -DONNX_ML=1 -DHF2ONNX_VERSION=\"fuzz\" -Iinclude -Isrc"
src="src/common/error.cpp src/common/log.cpp src/common/mapped_file.cpp src/hf/tensor_data.cpp src/hf/config.cpp
     src/hf/safetensors.cpp src/hf/zip_reader.cpp src/hf/pickle.cpp src/hf/torch_bin.cpp src/onnx/reader.cpp
     src/onnx/writer.cpp"
objs=()
for s in $src; do
  o="$out/obj/$(echo "$s" | tr / _).o"
  if [ ! -f "$o" ] || [ "$s" -nt "$o" ] || [ -n "$(find src include -name '*.h' -newer "$o" -print -quit)" ]; then
    clang++ $flags -c "$s" -o "$o"
  fi
  objs+=("$o")
done
build_target() {
  local name=$1 bin="$out/fuzz_$1"
  if [ ! -f "$bin" ] || [ tools/fuzz/fuzz_readers.cpp -nt "$bin" ] || [ -n "$(find "$out/obj" -newer "$bin" -print -quit)" ]; then
    clang++ $flags -fsanitize=fuzzer -DFUZZ_TARGET="FUZZ_$(echo "$name" | tr a-z A-Z)" tools/fuzz/fuzz_readers.cpp \
      "${objs[@]}" -lonnx_proto -lprotobuf -lspdlog -lfmt -o "$bin"
  fi
}
if [ "$target" = build ]; then
  for t in $targets; do build_target "$t"; done
  exit 0
fi
case " $targets " in *" $target "*) ;; *) echo "unknown target '$target' (one of: $targets)" >&2; exit 2 ;; esac
build_target "$target"

# Seeds: the real inputs of this parser, and the unit tests' crafted ones.
corpus="$out/${FUZZ_CORPUS:-corpus-$target}"
seeds="$out/seeds-$target"
rm -rf "$seeds"
mkdir -p "$corpus" "$seeds"
tmp=build/tests/tmp
# 512 KB of EMPTY_DICT + POP: an object every 2 bytes, for the fuzzer to grow (up to -max_len). A 4 MB
# seed made every execution of it and its mutants take 50 ms (18 exec/s); the unit tests load 4 MB ones.
amplification() { { printf '\x80\x02'; head -c 524288 /dev/zero | tr '\0' '}' | sed 's/}}/}0/g'; printf '}.'; } > "$1"; }
seed() { [ -f "$1" ] && cp "$1" "$seeds/$(echo "$1" | tr / _)" || true; }
case "$target" in
  safetensors) for f in models/*/model.safetensors $(find "$tmp" -name '*.safetensors' -size -1024k 2>/dev/null); do seed "$f"; done ;;
  torch_bin)
    # A legacy header (magic number, protocol, sys_info) and an amplification pickle as the state dict.
    { head -c 137 models/bert-legacy/pytorch_model.bin; amplification /dev/stdout; } > "$seeds/amp_legacy.bin"
    for f in models/*/pytorch_model.bin $(find "$tmp" -name '*.bin' -size -1024k 2>/dev/null); do seed "$f"; done ;;
  pickle)
    [ "${FUZZ_AMPLIFICATION_SEED:-1}" = 0 ] || amplification "$seeds/amp_dicts.pkl"
    unzip -p models/bert/pytorch_model.bin '*/data.pkl' > "$seeds/bert_data.pkl" 2>/dev/null || true
    for f in $(find "$tmp" -name 'pytorch_model.bin' -size -1024k 2>/dev/null); do  # (the tests' zips have no CRCs)
      p="$seeds/$(echo "$f" | tr / _).pkl"
      unzip -p "$f" '*/data.pkl' > "$p" 2>/dev/null || true
      [ -s "$p" ] || rm -f "$p"
    done ;;
  onnx) for f in out/*/*.onnx $(find "$tmp" -name '*.onnx' -size -1024k 2>/dev/null); do seed "$f"; done ;;
  config)
    { printf '{"hidden_size": 8, "rope_scaling": '; head -c 100000 /dev/zero | tr '\0' '['; } > "$seeds/deep.json"
    for f in models/*/config.json $(find "$tmp" -name '*.json' -size -1024k 2>/dev/null); do seed "$f"; done ;;
esac

# -max_len 8 MB: amplification needs inputs of megabytes; -rss_limit_mb 2048 makes it a finding.
"$out/fuzz_$target" -max_total_time="$seconds" -max_len=8388608 -rss_limit_mb=2048 -timeout=60 \
  -artifact_prefix="$out/$target-" -print_final_stats=1 "$corpus" "$seeds"
