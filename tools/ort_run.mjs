// Runs ONNX models in ONNX Runtime (CPU) on .npy inputs and writes every output as .npy.
//   node tools/ort_run.mjs MODEL.onnx INPUT_DIR OUTPUT_DIR [MODEL2 IN2 OUT2 ...] [--threads N]
//                          [--empty-past KV_HEADS,HEAD_DIM]
// Each model input NAME is read from INPUT_DIR/NAME.npy (other files there are ignored). With --empty-past,
// missing past_key_values.* inputs are empty caches [batch, KV_HEADS, 0, HEAD_DIM] (a decoder's first step).
import fs from 'node:fs';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { readNpy, writeNpy } from './npy.mjs';

const args = process.argv.slice(2);
let threads = 1;
const ti = args.indexOf('--threads');
if (ti >= 0) { threads = Number(args[ti + 1]); args.splice(ti, 2); }
let emptyPast = null;
const ei = args.indexOf('--empty-past');
if (ei >= 0) { emptyPast = args[ei + 1].split(',').map(Number); args.splice(ei, 2); }
if (args.length === 0 || args.length % 3 !== 0) {
  console.error('usage: ort_run.mjs MODEL INPUT_DIR OUTPUT_DIR [MODEL INPUT_DIR OUTPUT_DIR ...] [--threads N]');
  process.exit(2);
}
try {
  const sessions = new Map();  // a model named by several jobs is loaded once
  for (let i = 0; i < args.length; i += 3) {
    const [model, inDir, outDir] = args.slice(i, i + 3);
    if (!sessions.has(model)) sessions.set(model, await ort.InferenceSession.create(model, { intraOpNumThreads: threads, interOpNumThreads: 1 }));
    const session = sessions.get(model);
    const feeds = {};
    for (const name of session.inputNames) {
      const file = path.join(inDir, `${name}.npy`);
      if (!fs.existsSync(file) && emptyPast && name.startsWith('past_key_values.')) {
        const batch = readNpy(path.join(inDir, 'input_ids.npy')).dims[0];
        feeds[name] = new ort.Tensor('float32', new Float32Array(0), [batch, emptyPast[0], 0, emptyPast[1]]);
        continue;
      }
      if (!fs.existsSync(file)) throw new Error(`${model}: input '${name}' has no file ${file}`);
      const a = readNpy(file);
      feeds[name] = new ort.Tensor(a.type, a.data, a.dims);
    }
    const results = await session.run(feeds);
    fs.mkdirSync(outDir, { recursive: true });
    for (const [name, t] of Object.entries(results)) writeNpy(path.join(outDir, `${name}.npy`), t.type, t.dims, t.data);
  }
} catch (e) {
  console.error(`ort_run: ${e.message}`);
  process.exit(1);
}
