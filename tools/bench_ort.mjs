// ONNX Runtime latency over fixed inputs: token ids [BATCH, SEQ] (and a mask of ones), audio input_values
// [BATCH, SEQ samples], images pixel_values [BATCH, 3, S, S] (--image-size S, default 224), a diffusers UNet's
// sample (a VAE decoder's latent_sample) [BATCH, 4, S, S] latents (--latent-size S, default 64) with timestep [BATCH] and encoder_hidden_states
// [BATCH, SEQ, D] (--context-dim D, default 768). Several models are
// timed round-robin in one process (one run of each per round), so that a slow spell of a shared machine hits
// them all alike.
//   node tools/bench_ort.mjs BATCH SEQ RUNS MODEL.onnx [MODEL2.onnx ...] [--threads N] [--image-size S]
//                            [--latent-size S] [--context-dim D]
// prints one line per model: MEDIAN_MS MIN_MS
import ort from 'onnxruntime-node';

const args = process.argv.slice(2);
let threads = 1;
const ti = args.indexOf('--threads');
if (ti >= 0) { threads = Number(args[ti + 1]); args.splice(ti, 2); }
let imageSize = 224;
const ii = args.indexOf('--image-size');
if (ii >= 0) { imageSize = Number(args[ii + 1]); args.splice(ii, 2); }
let latentSize = 64, contextDim = 768;
const li = args.indexOf('--latent-size');
if (li >= 0) { latentSize = Number(args[li + 1]); args.splice(li, 2); }
const ci = args.indexOf('--context-dim');
if (ci >= 0) { contextDim = Number(args[ci + 1]); args.splice(ci, 2); }
const floats = (dims) => new ort.Tensor('float32', Float32Array.from({ length: dims.reduce((a, b) => a * b) }, (_, i) => Math.sin(i * 0.37) * 0.5), dims);
const [batchS, seqS, runsS, ...models] = args;
const batch = Number(batchS), seq = Number(seqS), runs = Number(runsS);
const n = batch * seq;
const sessions = [];
for (const model of models) {
  const session = await ort.InferenceSession.create(model, {
    intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all',
  });
  const feeds = {};
  for (const name of session.inputNames) {
    if (name === 'input_values' || name === 'pixel_values') {
      const dims = name === 'input_values' ? [batch, seq] : [batch, 3, imageSize, imageSize];
      const f = Float32Array.from({ length: dims.reduce((a, b) => a * b) }, (_, i) => Math.sin(i * 0.37) * 0.5);
      feeds[name] = new ort.Tensor('float32', f, dims);
      continue;
    }
    if (name === 'sample' || name === 'latent_sample') { feeds[name] = floats([batch, 4, latentSize, latentSize]); continue; }
    if (name === 'encoder_hidden_states') { feeds[name] = floats([batch, seq, contextDim]); continue; }
    if (name === 'timestep') { feeds[name] = new ort.Tensor('int64', new BigInt64Array(batch).fill(500n), [batch]); continue; }
    const data = new BigInt64Array(n);
    for (let i = 0; i < n; i++) data[i] = name === 'input_ids' ? BigInt(1000 + ((i * 7919) % 20000)) : name === 'attention_mask' ? 1n : 0n;
    feeds[name] = new ort.Tensor('int64', data, [batch, seq]);
  }
  for (let i = 0; i < 3; i++) await session.run(feeds);  // warm-up
  sessions.push({ session, feeds, times: [] });
}
for (let r = 0; r < runs; r++) {
  for (const s of sessions) {
    const t0 = process.hrtime.bigint();
    await s.session.run(s.feeds);
    s.times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
}
for (const s of sessions) {
  s.times.sort((a, b) => a - b);
  console.log(`${s.times[Math.floor(s.times.length / 2)].toFixed(1)} ${s.times[0].toFixed(1)}`);
}
