#!/usr/bin/env bash
# The main job on the shipped default model: export models/bert-seqcls to out/bert-seqcls (FP32 and
# dynamic INT8, the hub layout: onnx/model.onnx, onnx/model_quantized.onnx), show what was written, then
# run both models in ONNX Runtime on the fixture's example input and print their outputs side by side.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
model=models/bert-seqcls
out=out/bert-seqcls
build/hf2onnx export "$model" "$out" --quantize --report out/bert-seqcls.report.json
echo
find "$out" -type f -printf '%P\t%s bytes\n' | sort
echo
build/hf2onnx inspect "$out/onnx/model.onnx"
echo
node tools/compare_outputs.mjs "$out/onnx/model.onnx" "$out/onnx/model_quantized.onnx" "$model/ref/a" "$out/config.json"
