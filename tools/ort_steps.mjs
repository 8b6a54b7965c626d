// A decoder's KV cache checked in ONNX Runtime: one call on all new tokens against a prefill followed by
// cached steps of one token each, in one process.
//   node tools/ort_steps.mjs FULL.onnx STEP.onnx IN_DIR OUT_DIR [IN_DIR2 OUT_DIR2 ...] [--steps K] [--threads N]
// For each IN_DIR / OUT_DIR pair (the models are loaded once): FULL runs on IN_DIR's inputs (every input of FULL as IN_DIR/<name>.npy) → OUT_DIR/full/<output>.npy. Then FULL
// runs again on all but the last K new tokens (the prefill) and STEP K times on one token each, every output
// present.X of a call feeding input past_key_values.X of the next → OUT_DIR/steps/<first output>.npy, the steps'
// first outputs concatenated along axis 1 (comparable with the last K positions of the full call's).
// New-token inputs (axis 1): input_ids, decoder_input_ids, position_ids; a decoder-only model's attention_mask
// covers past + new tokens and is cut to the tokens seen so far. Decoder-only: FULL = STEP = model.onnx (its
// past may be non-empty); seq2seq: FULL = decoder_model.onnx, STEP = decoder_with_past_model.onnx.
import fs from 'node:fs';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { command } from './cli.mjs';
import { readNpy, writeNpy } from './npy.mjs';

const { args, fail, option } = command('ort_steps');
const steps = Number(option('--steps', '2'));
const threads = Number(option('--threads', '1'));
if (args.length < 4 || args.length % 2 !== 0)
  fail('usage: ort_steps.mjs FULL.onnx STEP.onnx IN_DIR OUT_DIR [IN_DIR2 OUT_DIR2 ...] [--steps K] [--threads N]');
const [fullPath, stepPath, ...dirs] = args;

// Rows [from, to) of axis 1 of a tensor [B, L, ...].
function slice1(t, from, to) {
  const [b, l, ...rest] = t.dims;
  const inner = rest.reduce((a, x) => a * x, 1);
  const out = new t.data.constructor(b * (to - from) * inner);
  for (let i = 0; i < b; i++)
    out.set(t.data.subarray((i * l + from) * inner, (i * l + to) * inner), i * (to - from) * inner);
  return new ort.Tensor(t.type, out, [b, to - from, ...rest]);
}
function concat1(ts) {
  const [b, , ...rest] = ts[0].dims;
  const inner = rest.reduce((a, x) => a * x, 1);
  const l = ts.reduce((a, t) => a + t.dims[1], 0);
  const out = new ts[0].data.constructor(b * l * inner);
  let at = 0;
  for (let i = 0; i < b; i++)
    for (const t of ts) {
      const n = t.dims[1] * inner;
      out.set(t.data.subarray(i * n, (i + 1) * n), at);
      at += n;
    }
  return new ort.Tensor(ts[0].type, out, [b, l, ...rest]);
}
function save(dir, results) {
  fs.mkdirSync(dir, { recursive: true });
  for (const [name, t] of Object.entries(results)) writeNpy(path.join(dir, `${name}.npy`), t.type, t.dims, t.data);
}

try {
  const opts = { intraOpNumThreads: threads, interOpNumThreads: 1 };
  const full = await ort.InferenceSession.create(fullPath, opts);
  const step = stepPath === fullPath ? full : await ort.InferenceSession.create(stepPath, opts);
  for (let d = 0; d < dirs.length; d += 2) await check(full, step, dirs[d], dirs[d + 1]);
} catch (e) {
  fail(e.message);
}

async function check(full, step, inDir, outDir) {
  const given = {};
  for (const name of new Set([...full.inputNames, ...step.inputNames])) {
    const file = path.join(inDir, `${name}.npy`);
    if (!fs.existsSync(file)) continue;
    const a = readNpy(file);
    given[name] = new ort.Tensor(a.type, a.data, a.dims);
  }
  const pick = (session, feeds) => {
    const out = {};
    for (const name of session.inputNames) {
      if (!(name in feeds)) throw new Error(`${session === full ? fullPath : stepPath}: no value for input '${name}'`);
      out[name] = feeds[name];
    }
    return out;
  };
  const fullOut = await full.run(pick(full, given));
  save(path.join(outDir, 'full'), fullOut);

  const tokens = ['input_ids', 'decoder_input_ids', 'position_ids'].filter((n) => n in given);
  const s = given[tokens[0]].dims[1];
  if (s <= steps) throw new Error(`${s} new tokens: the prefill needs more than --steps ${steps}`);
  const decoderOnly = 'input_ids' in given && 'attention_mask' in given && full.inputNames.some((n) => n.startsWith('past_key_values.'));
  const total = decoderOnly ? given.attention_mask.dims[1] : 0;
  const feedsFor = (from, to, pasts) => {
    const f = { ...given, ...pasts };
    for (const n of tokens) f[n] = slice1(given[n], from, to);
    if (decoderOnly) f.attention_mask = slice1(given.attention_mask, 0, total - s + to);
    return f;
  };
  let pasts = {};
  const first = step.outputNames[0];
  let out = await full.run(pick(full, feedsFor(0, s - steps, pasts)));
  const stepped = [];
  for (let k = 0; k < steps; k++) {
    for (const [name, t] of Object.entries(out))
      if (name.startsWith('present.')) pasts[`past_key_values.${name.slice('present.'.length)}`] = t;
    out = await step.run(pick(step, feedsFor(s - steps + k, s - steps + k + 1, pasts)));
    stepped.push(out[first]);
  }
  save(path.join(outDir, 'steps'), { [first]: concat1(stepped) });
}
