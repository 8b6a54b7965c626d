// Greedy decoding with the KV cache in ONNX Runtime, the way transformers' generate() drives a decoder:
// position_ids = cumsum(attention_mask) - 1 (1 on padding), one prefill call on the prompt with an empty
// cache, then one call per new token feeding present.* back as past_key_values.*.
//   node tools/ort_generate.mjs MODEL.onnx PROMPT_DIR NEW_TOKENS OUT.npy --cache KV_HEADS,HEAD_DIM [--threads N]
// PROMPT_DIR holds input_ids.npy and attention_mask.npy (int64 [batch, length]); OUT.npy gets
// prompt + new tokens. Prints prefill ms and decode tokens/s on stderr.
import ort from 'onnxruntime-node';
import path from 'node:path';
import { readNpy, writeNpy } from './npy.mjs';

const args = process.argv.slice(2);
let threads = 1;
const ti = args.indexOf('--threads');
if (ti >= 0) { threads = Number(args[ti + 1]); args.splice(ti, 2); }
let cache = null;  // [kv_heads, head_dim] of past_key_values.* (onnxruntime-node does not expose input shapes)
const ci = args.indexOf('--cache');
if (ci >= 0) { cache = args[ci + 1].split(',').map(Number); args.splice(ci, 2); }
if (args.length !== 4 || !cache) {
  console.error('usage: ort_generate.mjs MODEL.onnx PROMPT_DIR NEW_TOKENS OUT.npy --cache KV_HEADS,HEAD_DIM [--threads N]');
  process.exit(2);
}
const [model, promptDir, newTokensS, outPath] = args;
const newTokens = Number(newTokensS);

try {
  const session = await ort.InferenceSession.create(model, { intraOpNumThreads: threads, interOpNumThreads: 1 });
  const ids = readNpy(path.join(promptDir, 'input_ids.npy'));
  const mask = readNpy(path.join(promptDir, 'attention_mask.npy'));
  const [batch, promptLen] = ids.dims;
  const pastNames = session.inputNames.filter(n => n.startsWith('past_key_values.'));
  const rows = Array.from({ length: batch }, (_, b) => Array.from(ids.data.slice(b * promptLen, (b + 1) * promptLen)));
  const masks = Array.from({ length: batch }, (_, b) => Array.from(mask.data.slice(b * promptLen, (b + 1) * promptLen)));
  let past = null;
  let stepIds = rows.map(r => r.slice());
  let prefillMs = 0, decodeMs = 0;
  for (let step = 0; step < newTokens; step++) {
    const len = stepIds[0].length, total = masks[0].length;
    const feeds = {
      input_ids: new ort.Tensor('int64', BigInt64Array.from(stepIds.flat()), [batch, len]),
      attention_mask: new ort.Tensor('int64', BigInt64Array.from(masks.flat()), [batch, total]),
    };
    if (session.inputNames.includes('position_ids')) {
      const pos = [];
      for (const m of masks) {
        let c = 0n;
        const all = m.map(v => { c += v; return v === 0n ? 1n : c - 1n; });
        pos.push(...all.slice(total - len));
      }
      feeds.position_ids = new ort.Tensor('int64', BigInt64Array.from(pos), [batch, len]);
    }
    for (const name of pastNames) {  // first step: an empty cache [batch, kv_heads, 0, head_dim]
      feeds[name] = past ? past[name.replace('past_key_values.', 'present.')]
                         : new ort.Tensor('float32', new Float32Array(0), [batch, cache[0], 0, cache[1]]);
    }
    const t0 = process.hrtime.bigint();
    const out = await session.run(feeds);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (step === 0) prefillMs = ms; else decodeMs += ms;
    const logits = out.logits, vocab = logits.dims[2];
    stepIds = [];
    for (let b = 0; b < batch; b++) {
      const base = (b * len + len - 1) * vocab;
      let best = 0;
      for (let v = 1; v < vocab; v++) if (logits.data[base + v] > logits.data[base + best]) best = v;
      rows[b].push(BigInt(best));
      masks[b].push(1n);
      stepIds.push([BigInt(best)]);
    }
    past = out;
  }
  writeNpy(outPath, 'int64', [batch, rows[0].length], BigInt64Array.from(rows.flat()));
  const tps = newTokens > 1 ? ((newTokens - 1) * batch) / (decodeMs / 1000) : 0;
  console.error(`prefill ${prefillMs.toFixed(1)} ms, decode ${tps.toFixed(1)} tokens/s`);
} catch (e) {
  console.error(`ort_generate: ${e.message}`);
  process.exit(1);
}

