// A transformers.js (@huggingface/transformers 4.3.2) pipeline on an export folder, loaded exactly as written
// (config and tokenizer at the root, onnx/model.onnx or, with --dtype q8, onnx/model_quantized.onnx). Offline.
//   node tools/tjs_pipeline.mjs MODEL_DIR TASK TEXT INPUTS_DIR [--dtype fp32|q8]
// Prints the pipeline's output as JSON on stdout (text-classification: every label with its score) and writes
// the token ids its tokenizer made to INPUTS_DIR (input_ids.npy, attention_mask.npy, token_type_ids.npy).
import fs from 'node:fs';
import path from 'node:path';
import { command } from './cli.mjs';
import { writeNpy } from './npy.mjs';

const { args, fail, option } = command('tjs_pipeline');
const dtype = option('--dtype', 'fp32');
if (args.length !== 4) fail('usage: tjs_pipeline.mjs MODEL_DIR TASK TEXT INPUTS_DIR [--dtype fp32|q8]');
const [modelDirArg, task, text, inputsDir] = args;
console.error = () => {};  // the library's dumps would break the one-line error contract

try {
  const tjs = await import('@huggingface/transformers');
  tjs.env.allowRemoteModels = false;
  tjs.env.allowLocalModels = true;
  tjs.env.useFSCache = false;
  tjs.env.useBrowserCache = false;
  const pipe = await tjs.pipeline(task, path.resolve(modelDirArg), {
    dtype,
    local_files_only: true,
    session_options: { intraOpNumThreads: 1, interOpNumThreads: 1 },
  });
  const result = await pipe(text, task === 'text-classification' ? { top_k: null } : {});
  const encoded = await pipe.tokenizer(text);
  fs.mkdirSync(inputsDir, { recursive: true });
  for (const name of ['input_ids', 'attention_mask', 'token_type_ids']) {
    const t = encoded[name];
    if (t) writeNpy(path.join(inputsDir, `${name}.npy`), 'int64', t.dims, BigInt64Array.from(t.data, v => BigInt(v)));
  }
  process.stdout.write(JSON.stringify(result) + '\n');
  await pipe.dispose();
} catch (e) {
  fail(e?.message ?? e);
}
