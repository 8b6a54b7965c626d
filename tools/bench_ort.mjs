// ONNX Runtime latency of text models over fixed token ids. Several models are timed round-robin in one
// process (one run of each per round), so that a slow spell of a shared machine hits them all alike.
//   node tools/bench_ort.mjs BATCH SEQ RUNS MODEL.onnx [MODEL2.onnx ...] [--threads N]
// prints one line per model: MEDIAN_MS MIN_MS
import ort from 'onnxruntime-node';

const args = process.argv.slice(2);
let threads = 1;
const ti = args.indexOf('--threads');
if (ti >= 0) { threads = Number(args[ti + 1]); args.splice(ti, 2); }
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
