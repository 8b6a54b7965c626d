// One forward call through transformers.js (@huggingface/transformers 4.3.2), loading an export folder as
// a hub repository: config.json at the root, the ONNX file in its default subfolder onnx/ (--subfolder ''
// for Optimum's layout). Fully offline.
//   node tools/tjs_forward.mjs MODEL_DIR INPUT_DIR OUT_DIR [--class AutoModelForSequenceClassification]
//                              [--dtype fp32|q8] [--subfolder DIR]
// INPUT_DIR holds one .npy per model input (input_ids, attention_mask, token_type_ids: int64 [B, S]);
// every tensor the model returns is written to OUT_DIR/<name>.npy (float32).
import fs from 'node:fs';
import path from 'node:path';
import { command } from './cli.mjs';
import { readNpy, writeNpy } from './npy.mjs';

const { args, fail, option } = command('tjs_forward');
const className = option('--class', 'AutoModel');
const dtype = option('--dtype', 'fp32');
const subfolder = option('--subfolder', undefined);
if (args.length !== 3) fail('usage: tjs_forward.mjs MODEL_DIR INPUT_DIR OUT_DIR [--class C] [--dtype fp32|q8] [--subfolder DIR]');
const [modelDirArg, inputDir, outDir] = args;
console.error = () => {};  // the library's dumps would break the one-line error contract

try {
  const modelDir = path.resolve(modelDirArg);
  const tjs = await import('@huggingface/transformers');
  const { env, Tensor } = tjs;
  const Auto = tjs[className];
  if (typeof Auto?.from_pretrained !== 'function') fail(`${className}: not a transformers.js model class`);
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  env.useFSCache = false;
  env.useBrowserCache = false;
  const model = await Auto.from_pretrained(modelDir, {  // an absolute path is used as is
    local_files_only: true,
    device: 'cpu',
    dtype,
    ...(subfolder === undefined ? {} : { subfolder }),
    session_options: { intraOpNumThreads: 1, interOpNumThreads: 1 },
  });
  const inputs = {};
  for (const f of fs.readdirSync(inputDir).filter(f => f.endsWith('.npy'))) {
    const name = f.slice(0, -4);
    if (!model.sessions.model.inputNames.includes(name)) continue;  // reference files that are not inputs
    const a = readNpy(path.join(inputDir, f));
    inputs[name] = new Tensor(a.type, a.data, a.dims);
  }
  const outputs = await model(inputs);
  fs.mkdirSync(outDir, { recursive: true });
  let written = 0;
  for (const [name, t] of Object.entries(outputs)) {
    if (!(t instanceof Tensor)) continue;
    writeNpy(path.join(outDir, `${name}.npy`), 'float32', t.dims, Float32Array.from(t.data));
    ++written;
  }
  if (!written) fail('the model returned no tensors');
  await model.dispose();
} catch (e) {
  fail(e?.message ?? e);
}
