// Greedy decoding of an encoder-decoder export in ONNX Runtime, the way Optimum's ORTModelForSeq2SeqLM
// (two decoders) or transformers.js (the merged decoder) drive it: the encoder once, the first decoder
// step without past from decoder_start_token_id, then one step per token with the past fed back
// (present.*.decoder.* each step, present.*.encoder.* from the first step).
//   node tools/ort_seq2seq.mjs DIR INPUT_DIR NEW_TOKENS OUT.npy --start ID --cache HEADS,HEAD_DIM
//        [--merged] [--suffix _quantized] [--threads N]
// INPUT_DIR holds the encoder's inputs (input_ids.npy + attention_mask.npy, or input_features.npy). OUT.npy
// gets the decoder sequences [batch, 1 + NEW_TOKENS]. Prints encoder ms and decoder tokens/s on stderr.
import path from 'node:path';
import ort from 'onnxruntime-node';
import { readNpy, writeNpy } from './npy.mjs';

const args = process.argv.slice(2);
const flag = (name, fallback) => {
  const i = args.indexOf(name);
  if (i < 0) return fallback;
  const v = args[i + 1];
  args.splice(i, 2);
  return v;
};
const boolFlag = name => {
  const i = args.indexOf(name);
  if (i >= 0) args.splice(i, 1);
  return i >= 0;
};
const threads = Number(flag('--threads', '1'));
const start = flag('--start', null);
const cache = flag('--cache', null);
const suffix = flag('--suffix', '');
const merged = boolFlag('--merged');
if (args.length !== 4 || start === null || !cache) {
  console.error('usage: ort_seq2seq.mjs DIR INPUT_DIR NEW_TOKENS OUT.npy --start ID --cache HEADS,HEAD_DIM [--merged] [--suffix S] [--threads N]');
  process.exit(2);
}
const [dir, inDir, newTokensS, outPath] = args;
const newTokens = Number(newTokensS);
const [heads, headDim] = cache.split(',').map(Number);

try {
  const opts = { intraOpNumThreads: threads, interOpNumThreads: 1 };
  const session = name => ort.InferenceSession.create(path.join(dir, `${name}${suffix}.onnx`), opts);
  const encoder = await session('encoder_model');
  const first = await session(merged ? 'decoder_model_merged' : 'decoder_model');
  const next = merged ? first : await session('decoder_with_past_model');

  const encFeeds = {};
  for (const name of encoder.inputNames) {
    const a = readNpy(path.join(inDir, `${name}.npy`));
    encFeeds[name] = new ort.Tensor(a.type, a.data, a.dims);
  }
  let t0 = process.hrtime.bigint();
  const encoderStates = (await encoder.run(encFeeds)).last_hidden_state;
  const encoderMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const batch = encoderStates.dims[0];

  const rows = Array.from({ length: batch }, () => [BigInt(start)]);
  let past = null;
  t0 = process.hrtime.bigint();
  for (let step = 0; step < newTokens; step++) {
    const s = step === 0 ? first : next;
    const ids = rows.map(r => r[r.length - 1]);
    const feeds = { input_ids: new ort.Tensor('int64', BigInt64Array.from(ids), [batch, 1]) };
    if (s.inputNames.includes('encoder_hidden_states')) feeds.encoder_hidden_states = encoderStates;
    if (s.inputNames.includes('encoder_attention_mask')) feeds.encoder_attention_mask = encFeeds.attention_mask;
    if (s.inputNames.includes('use_cache_branch')) feeds.use_cache_branch = new ort.Tensor('bool', [past !== null], [1]);
    for (const name of s.inputNames.filter(n => n.startsWith('past_key_values.')))
      feeds[name] = past ? past[name] : new ort.Tensor('float32', new Float32Array(0), [batch, heads, 0, headDim]);
    const out = await s.run(feeds);
    const nextPast = { ...past };  // the cross-attention cache of step 0 is kept (later steps output none or empty ones)
    for (const [name, t] of Object.entries(out)) {
      if (!name.startsWith('present.') || (name.includes('.encoder.') && past)) continue;
      nextPast[name.replace('present.', 'past_key_values.')] = t;
    }
    past = nextPast;
    const logits = out.logits, len = logits.dims[1], vocab = logits.dims[2];
    for (let b = 0; b < batch; b++) {
      const base = (b * len + len - 1) * vocab;
      let best = 0;
      for (let v = 1; v < vocab; v++) if (logits.data[base + v] > logits.data[base + best]) best = v;
      rows[b].push(BigInt(best));
    }
  }
  const decodeMs = Number(process.hrtime.bigint() - t0) / 1e6;
  writeNpy(outPath, 'int64', [batch, rows[0].length], BigInt64Array.from(rows.flat()));
  console.error(`encoder ${encoderMs.toFixed(1)} ms, decoder ${((newTokens * batch) / (decodeMs / 1000)).toFixed(1)} tokens/s`);
} catch (e) {
  console.error(`ort_seq2seq: ${e.message}`);
  process.exit(1);
}
