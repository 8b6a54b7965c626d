#!/usr/bin/env bash
# The main job on the shipped default model: export models/bert-seqcls to out/bert-seqcls (FP32 and
# dynamic INT8) and show what was written (files, sizes, inputs/outputs).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
model=models/bert-seqcls
out=out/bert-seqcls
build/hf2onnx export "$model" "$out" --quantize --report out/bert-seqcls.report.json
echo
ls -l "$out"
echo
build/hf2onnx inspect "$out/model.onnx"
echo
build/hf2onnx inspect "$out/model_quantized.onnx"
