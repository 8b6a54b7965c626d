// Replays a Stable Diffusion text-to-image run (classifier-free guidance + DDIM, eta 0) through exported ONNX
// parts in ONNX Runtime (CPU) and compares every stage with a reference fixture.
//   node tools/ort_sd_pipeline.mjs ONNX_DIR REF_DIR [--threads N] [--quantized] [--atol-latents X] [--out DIR]
// ONNX_DIR: Optimum's SD layout (text_encoder/, unet/, vae_decoder/ model.onnx, scheduler/scheduler_config.json).
// REF_DIR: e.g. fixtures/sd-tiny/ref/pipeline (manifest.json + generate/*.npy). Prints one JSON line; exit 0 when
// step_latents/latents_final <= atol-latents (3e-4) and image <= 1e-3, 1 when not, 2 on usage/IO errors.
// --quantized uses the *_quantized.onnx text encoder and unet, prints the numbers (and cosines) and exits 0.
import fs from 'node:fs';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { readNpy, writeNpy } from './npy.mjs';

const args = process.argv.slice(2);
const opt = (name, hasValue) => {
  const i = args.indexOf(name);
  if (i < 0) return undefined;
  const v = hasValue ? args[i + 1] : true;
  args.splice(i, hasValue ? 2 : 1);
  return v;
};
const threads = Number(opt('--threads', true) ?? 1);
const quantized = opt('--quantized', false) ?? false;
const atolLatents = Number(opt('--atol-latents', true) ?? 3e-4);
const outDir = opt('--out', true);
if (args.length !== 2 || !(threads > 0) || !(atolLatents > 0)) {
  console.error('usage: ort_sd_pipeline.mjs ONNX_DIR REF_DIR [--threads N] [--quantized] [--atol-latents X] [--out DIR]');
  process.exit(2);
}
const [onnxDir, refDir] = args;
const die = (msg, code) => { console.error(`ort_sd_pipeline: ${msg}`); process.exit(code); };

let gen, sched, scaling, ref, sessions;
try {
  gen = JSON.parse(fs.readFileSync(path.join(refDir, 'manifest.json'), 'utf8')).generate;
  sched = JSON.parse(fs.readFileSync(path.join(onnxDir, 'scheduler', 'scheduler_config.json'), 'utf8'));
  scaling = JSON.parse(fs.readFileSync(path.join(onnxDir, 'vae_decoder', 'config.json'), 'utf8')).scaling_factor
    ?? gen.vae_scaling_factor;
  ref = Object.fromEntries(['input_ids', 'negative_input_ids', 'latents', 'timesteps', 'prompt_embeds', 'noise_pred',
    'step_latents', 'latents_final', 'decoded', 'image'].map(n => [n, readNpy(path.join(refDir, 'generate', `${n}.npy`))]));
  const open = (part, q) => ort.InferenceSession.create(path.join(onnxDir, part, q ? 'model_quantized.onnx' : 'model.onnx'),
    { intraOpNumThreads: threads, interOpNumThreads: 1 });
  sessions = { te: await open('text_encoder', quantized), unet: await open('unet', quantized), vae: await open('vae_decoder', false) };
} catch (e) { die(e.message, 2); }

// Scheduler: only what DDIMScheduler does for SD (leading spacing, no clipping/thresholding).
const unsupported = [
  sched.timestep_spacing !== 'leading' && `timestep_spacing ${sched.timestep_spacing}`,
  !['scaled_linear', 'linear'].includes(sched.beta_schedule) && `beta_schedule ${sched.beta_schedule}`,
  sched.trained_betas && 'trained_betas', sched.clip_sample && 'clip_sample', sched.thresholding && 'thresholding',
  sched.rescale_betas_zero_snr && 'rescale_betas_zero_snr',
  !['epsilon', 'v_prediction', 'sample'].includes(sched.prediction_type) && `prediction_type ${sched.prediction_type}`,
].filter(Boolean);
if (unsupported.length) die(`unsupported scheduler config: ${unsupported.join(', ')}`, 2);
const T = sched.num_train_timesteps, n = ref.timesteps.data.length, ratio = Math.floor(T / n);
const timesteps = Array.from({ length: n }, (_, i) => (n - 1 - i) * ratio + (sched.steps_offset ?? 0));
const refTimesteps = Array.from(ref.timesteps.data, Number);
if (timesteps.join() !== refTimesteps.join()) {
  console.log(JSON.stringify({ timesteps, ref_timesteps: refTimesteps, ok: false }));
  die(`timesteps [${timesteps}] differ from the reference [${refTimesteps}]`, 1);
}
const lin = (a, b, i) => a + (b - a) * i / (T - 1);
const alphasCumprod = new Float64Array(T);
for (let i = 0, acc = 1; i < T; i++) {
  const beta = sched.beta_schedule === 'linear' ? lin(sched.beta_start, sched.beta_end, i)
    : lin(Math.sqrt(sched.beta_start), Math.sqrt(sched.beta_end), i) ** 2;
  acc *= 1 - beta;
  alphasCumprod[i] = Math.fround(acc);
}
const finalAlpha = sched.set_alpha_to_one ? 1 : alphasCumprod[0];
function ddimStep(out, t, x) {
  const aT = alphasCumprod[t], prevT = t - ratio, aPrev = prevT >= 0 ? alphasCumprod[prevT] : finalAlpha;
  const sa = Math.sqrt(aT), sb = Math.sqrt(1 - aT), res = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    let x0, e;
    if (sched.prediction_type === 'epsilon') { x0 = (x[i] - sb * out[i]) / sa; e = out[i]; }
    else if (sched.prediction_type === 'v_prediction') { x0 = sa * x[i] - sb * out[i]; e = sa * out[i] + sb * x[i]; }
    else { x0 = out[i]; e = (x[i] - sa * x0) / sb; }
    res[i] = Math.sqrt(aPrev) * x0 + Math.sqrt(1 - aPrev) * e;
  }
  return res;
}

const cat = (arrays, Ctor = Float32Array) => {
  const r = new Ctor(arrays.reduce((s, a) => s + a.length, 0));
  arrays.reduce((off, a) => (r.set(a, off), off + a.length), 0);
  return r;
};
const tensor = a => new ort.Tensor(a.type, a.data, a.dims);
const ours = {};
try {
  const embed = async ids => (await sessions.te.run({ input_ids: tensor(ids) })).last_hidden_state;
  const [neg, pos] = [await embed(ref.negative_input_ids), await embed(ref.input_ids)];
  const [, S, D] = pos.dims;
  ours.prompt_embeds = cat([neg.data, pos.data]);
  const ehs = new ort.Tensor('float32', ours.prompt_embeds, [2, S, D]);
  const ldims = ref.latents.dims, L = ref.latents.data.length;
  let latents = ref.latents.data.map(v => v * gen.init_noise_sigma);
  const noisePreds = [], stepLatents = [];
  for (const t of timesteps) {
    const r = await sessions.unet.run({
      sample: new ort.Tensor('float32', cat([latents, latents]), [2, ...ldims.slice(1)]),
      timestep: new ort.Tensor('int64', BigInt64Array.from([t, t], BigInt), [2]),
      encoder_hidden_states: ehs,
    });
    const np = r.out_sample.data, eps = new Float64Array(L);
    for (let i = 0; i < L; i++) eps[i] = np[i] + gen.guidance_scale * (np[L + i] - np[i]);
    noisePreds.push(np);
    latents = ddimStep(eps, t, latents);
    stepLatents.push(latents);
  }
  ours.noise_pred = cat(noisePreds);
  ours.step_latents = cat(stepLatents);
  ours.latents_final = latents;
  const dec = (await sessions.vae.run({ latent_sample: new ort.Tensor('float32', latents.map(v => v / scaling), ldims) })).sample;
  ours.decoded = dec.data;
  const [B, C, H, W] = dec.dims;
  ours.image = new Float32Array(dec.data.length);
  for (let b = 0; b < B; b++) for (let c = 0; c < C; c++) for (let y = 0; y < H; y++) for (let x = 0; x < W; x++)
    ours.image[((b * H + y) * W + x) * C + c] = Math.min(1, Math.max(0, dec.data[((b * C + c) * H + y) * W + x] / 2 + 0.5));
  if (outDir) {
    fs.mkdirSync(outDir, { recursive: true });
    writeNpy(path.join(outDir, 'latents_final.npy'), 'float32', ldims, ours.latents_final);
    writeNpy(path.join(outDir, 'image.npy'), 'float32', [B, H, W, C], ours.image);
  }
} catch (e) { die(e.message, 2); }

const maxAbs = (a, b) => {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};
const cosine = (a, b) => {
  let ab = 0, aa = 0, bb = 0;
  for (let i = 0; i < a.length; i++) { ab += a[i] * b[i]; aa += a[i] * a[i]; bb += b[i] * b[i]; }
  return ab / Math.sqrt(aa * bb);
};
const max_abs = Object.fromEntries(Object.entries(ours).map(([k, v]) => [k, maxAbs(v, ref[k].data)]));
const report = { max_abs, max_abs_ref: { latents_final: ref.latents_final.data.reduce((m, v) => Math.max(m, Math.abs(v)), 0) } };
if (quantized) {
  report.cosine = { latents_final: cosine(ours.latents_final, ref.latents_final.data), image: cosine(ours.image, ref.image.data) };
  console.log(JSON.stringify({ ...report, quantized: true }));
  process.exit(0);
}
const failed = [['step_latents', atolLatents], ['latents_final', atolLatents], ['image', 1e-3]]
  .filter(([k, tol]) => !(max_abs[k] <= tol));
console.log(JSON.stringify({ ...report, ok: failed.length === 0 }));
for (const [k, tol] of failed) console.error(`ort_sd_pipeline: ${k} differs by ${max_abs[k]} (> ${tol})`);
process.exit(failed.length ? 1 : 0);
