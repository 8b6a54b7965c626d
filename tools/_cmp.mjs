import ort from 'onnxruntime-node';
import { readNpy } from './npy.mjs';
import path from 'node:path';
const [dir, refdir, ...models] = process.argv.slice(2);
const run = async (m) => {
  const s = await ort.InferenceSession.create(path.join(dir, m), { intraOpNumThreads: 1 });
  const feeds = {};
  for (const n of s.inputNames) { const a = readNpy(path.join(refdir, n + '.npy')); feeds[n] = new ort.Tensor(a.type, a.data, a.dims); }
  const r = await s.run(feeds); return r[s.outputNames[0]].data;
};
const f = await run('model.onnx');
for (const m of models) {
  const q = await run(m);
  let ab = 0, aa = 0, bb = 0;
  for (let i = 0; i < f.length; ++i) { ab += f[i] * q[i]; aa += f[i] * f[i]; bb += q[i] * q[i]; }
  console.log(m.padEnd(28), 'cosine', (ab / Math.sqrt(aa * bb)).toFixed(6), 'q[0..3]', Array.from(q.slice(0, 3)).map(v => v.toFixed(5)).join(' '));
}
