// ONNX Runtime latency of text models over fixed token ids.
//   node tools/bench_ort.mjs MODEL.onnx BATCH SEQ [RUNS] [--threads N]      prints: MEDIAN_MS MIN_MS
import ort from 'onnxruntime-node';

const args = process.argv.slice(2);
let threads = 1;
const ti = args.indexOf('--threads');
if (ti >= 0) { threads = Number(args[ti + 1]); args.splice(ti, 2); }
const [model, batchS, seqS, runsS] = args;
const batch = Number(batchS), seq = Number(seqS), runs = Number(runsS ?? 10);
const session = await ort.InferenceSession.create(model, {
  intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all',
});
const n = batch * seq;
const feeds = {};
for (const name of session.inputNames) {
  const data = new BigInt64Array(n);
  for (let i = 0; i < n; i++) data[i] = name === 'input_ids' ? BigInt(1000 + ((i * 7919) % 20000)) : name === 'attention_mask' ? 1n : 0n;
  feeds[name] = new ort.Tensor('int64', data, [batch, seq]);
}
for (let i = 0; i < 3; i++) await session.run(feeds);  // warm-up
const times = [];
for (let i = 0; i < runs; i++) {
  const t0 = process.hrtime.bigint();
  await session.run(feeds);
  times.push(Number(process.hrtime.bigint() - t0) / 1e6);
}
times.sort((a, b) => a - b);
console.log(`${times[Math.floor(times.length / 2)].toFixed(1)} ${times[0].toFixed(1)}`);
