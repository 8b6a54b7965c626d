#!/usr/bin/env bash
# Builds tools/fuzz/fuzz_readers.cpp with libFuzzer + AddressSanitizer + UBSan (clang) and runs it for
# SECONDS (default 120), seeded with the shipped checkpoints. Not part of the test command (it needs
# clang and minutes); run it after changing a reader.   tools/fuzz/run.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-120}
out=build-fuzz
mkdir -p "$out/corpus"
src="src/common/error.cpp src/common/log.cpp src/common/mapped_file.cpp src/hf/tensor_data.cpp src/hf/safetensors.cpp
     src/hf/zip_reader.cpp src/hf/pickle.cpp src/hf/torch_bin.cpp src/onnx/reader.cpp src/onnx/writer.cpp"
clang++ -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -DONNX_NAMESPACE=onnx -DONNX_ML=1 -DHF2ONNX_VERSION='"fuzz"' -Iinclude -Isrc \
  tools/fuzz/fuzz_readers.cpp $src -lonnx_proto -lprotobuf -lspdlog -lfmt -o "$out/fuzz_readers"
# Seeds: each parser's real inputs, prefixed with the byte that selects it.
seed() { { printf "\\x$(printf %02x "$1")"; cat "$2"; } > "$out/corpus/$(basename "$(dirname "$2")")_$1_$(basename "$2")"; }
for f in models/*/model.safetensors; do seed 0 "$f"; done
for f in models/*/pytorch_model.bin; do seed 1 "$f"; done
for f in models/bert/pytorch_model.bin; do seed 3 <(unzip -p "$f" '*/data.pkl'); done 2>/dev/null || true
[ -f out/bert-seqcls/model.onnx ] && seed 2 out/bert-seqcls/model.onnx
"$out/fuzz_readers" -max_total_time="$seconds" -max_len=300000 -rss_limit_mb=4096 -print_final_stats=1 "$out/corpus"
