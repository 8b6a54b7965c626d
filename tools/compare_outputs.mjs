// Runs an FP32 model and its INT8 twin in ONNX Runtime on the same .npy inputs and prints their outputs
// side by side: per output its cosine similarity, then per row the first values of each and, for
// `logits` with a config.json id2label beside the folder, the label each predicts.
//   node tools/compare_outputs.mjs FP32.onnx INT8.onnx INPUT_DIR [CONFIG.json]
import fs from 'node:fs';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { readNpy } from './npy.mjs';

function fail(message) {
  process.stderr.write(`compare_outputs: ${String(message).split('\n')[0]}\n`);
  process.exit(1);
}
const args = process.argv.slice(2);
if (args.length < 3 || args.length > 4) fail('usage: compare_outputs.mjs FP32.onnx INT8.onnx INPUT_DIR [CONFIG.json]');
const [fp32, int8, inputDir, configPath] = args;
const fmt = v => (v >= 0 ? ' ' : '') + v.toFixed(4);

try {
  const id2label = configPath ? JSON.parse(fs.readFileSync(configPath, 'utf8')).id2label ?? null : null;
  const run = async model => {
    const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1, interOpNumThreads: 1 });
    const feeds = {};
    for (const name of session.inputNames) {
      const file = path.join(inputDir, `${name}.npy`);
      if (!fs.existsSync(file)) fail(`${model}: input '${name}' has no file ${file}`);
      const a = readNpy(file);
      feeds[name] = new ort.Tensor(a.type, a.data, a.dims);
    }
    return session.run(feeds);
  };
  const a = await run(fp32), b = await run(int8);
  console.log(`FP32 ${path.basename(fp32)} vs INT8 ${path.basename(int8)} (ONNX Runtime ${ort.env.versions?.common ?? ''}, this CPU):`);
  for (const [name, ta] of Object.entries(a)) {
    const tb = b[name];
    if (!tb) continue;
    const x = Float32Array.from(ta.data), y = Float32Array.from(tb.data);
    let dot = 0, nx = 0, ny = 0;
    for (let i = 0; i < x.length; i++) { dot += x[i] * y[i]; nx += x[i] * x[i]; ny += y[i] * y[i]; }
    console.log(`\n${name} [${ta.dims.join(', ')}]: cosine ${(dot / Math.sqrt(nx * ny)).toFixed(5)}`);
    const rows = ta.dims[0], per = x.length / rows, shown = Math.min(per, 4);
    for (let r = 0; r < rows; r++) {
      const row = v => Array.from(v.slice(r * per, r * per + shown), fmt).join(' ') + (per > shown ? ' …' : '');
      let line = `  row ${r}  FP32 ${row(x)}   INT8 ${row(y)}`;
      if (name === 'logits' && id2label && ta.dims.length === 2) {
        const arg = v => { let k = 0; for (let i = 1; i < per; i++) if (v[r * per + i] > v[r * per + k]) k = i; return k; };
        line += `   → ${id2label[arg(x)] ?? arg(x)} / ${id2label[arg(y)] ?? arg(y)}`;
      }
      console.log(line);
    }
  }
} catch (e) {
  fail(e?.message ?? e);
}
