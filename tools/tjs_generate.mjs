// Greedy generation with transformers.js (@huggingface/transformers 3.4.2, on the onnxruntime-node in tools/),
// as a reference for hf2onnx's encoder-decoder exports. Fully offline.
//   node tools/tjs_generate.mjs MODEL_DIR INPUT_DIR NEW_TOKENS OUT.npy [--dtype fp32|q8] [--threads N]
// MODEL_DIR is laid out like a hub ONNX repo: config.json, generation_config.json (optional) and
// onnx/encoder_model.onnx + onnx/decoder_model_merged.onnx (--dtype q8: onnx/*_quantized.onnx), or the
// same files at the root (Optimum's layout; transformers.js's `subfolder: ''`).
// INPUT_DIR holds input_ids.npy + attention_mask.npy (int64 [B, S]) for T5/BART/Marian, or
// input_features.npy (float32 [B, n_mels, frames]) for whisper (model_type in config.json).
// OUT.npy gets int64 [B, 1 + NEW_TOKENS]: decoder_start_token_id, then the raw argmax of each step's logits.
// Every logits processor is off, and eos_token_id is cleared so that no row stops early and EOS is not
// masked (with an EOS id, min_new_tokens works by masking EOS, which is no longer the raw argmax).
import fs from 'node:fs';
import path from 'node:path';
import { readNpy, writeNpy } from './npy.mjs';

function fail(message) {
  process.stderr.write(`tjs_generate: ${String(message).split('\n')[0]}\n`);
  process.exit(1);
}

const args = process.argv.slice(2);
function option(name, fallback) {
  const i = args.indexOf(name);
  if (i < 0) return fallback;
  if (i + 1 >= args.length) fail(`${name} needs a value`);
  const v = args[i + 1];
  args.splice(i, 2);
  return v;
}
const dtype = option('--dtype', 'fp32');
const threads = Number(option('--threads', '1'));
if (args.length !== 4) {
  fail('usage: tjs_generate.mjs MODEL_DIR INPUT_DIR NEW_TOKENS OUT.npy [--dtype fp32|q8] [--threads N]');
}
const [modelDirArg, inputDir, newTokensS, outPath] = args;
const newTokens = Number(newTokensS);
if (!Number.isInteger(newTokens) || newTokens < 1) fail(`NEW_TOKENS must be a positive integer, got "${newTokensS}"`);
if (dtype !== 'fp32' && dtype !== 'q8') fail(`--dtype must be fp32 or q8, got "${dtype}"`);
if (!Number.isInteger(threads) || threads < 1) fail('--threads must be a positive integer');

function readJson(file, required) {
  if (!fs.existsSync(file)) {
    if (required) fail(`${file}: not found`);
    return {};
  }
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    fail(`${file}: ${e.message}`);
  }
}

function readInput(name, type, rank) {
  const file = path.join(inputDir, name);
  if (!fs.existsSync(file)) fail(`${file}: not found`);
  let a;
  try {
    a = readNpy(file);
  } catch (e) {
    fail(e.message);
  }
  if (a.type !== type) fail(`${file}: expected ${type}, got ${a.type}`);
  if (a.dims.length !== rank) fail(`${file}: expected rank ${rank}, got shape [${a.dims.join(', ')}]`);
  return a;
}

// Library messages (console.error dumps every input tensor when a session fails) would break the
// one-line error contract; our own errors go through fail().
console.error = () => {};

try {
  const modelDir = path.resolve(modelDirArg);
  if (!fs.statSync(modelDir, { throwIfNoEntry: false })?.isDirectory()) fail(`${modelDir}: not a directory`);
  const config = readJson(path.join(modelDir, 'config.json'), true);
  const genConfig = readJson(path.join(modelDir, 'generation_config.json'), false);
  const modelType = config.model_type;
  if (!modelType) fail(`${modelDir}/config.json: no model_type`);
  if (config.is_encoder_decoder !== true) {
    fail(`${modelDir}/config.json: is_encoder_decoder must be true (transformers.js sizes the empty cache from it)`);
  }
  const isWhisper = modelType === 'whisper';
  // The order transformers.js merges them in: config.json, then generation_config.json.
  const startId = genConfig.decoder_start_token_id ?? config.decoder_start_token_id ??
                  genConfig.bos_token_id ?? config.bos_token_id;
  if (!Number.isInteger(startId)) fail('no integer decoder_start_token_id in generation_config.json or config.json');

  const suffix = dtype === 'q8' ? '_quantized' : '';
  // The hub layout keeps the ONNX files in onnx/ (transformers.js's default); Optimum's layout at the root.
  const subfolder = fs.existsSync(path.join(modelDir, 'onnx')) ? 'onnx' : '';
  for (const f of ['encoder_model', 'decoder_model_merged']) {
    const file = path.join(modelDir, subfolder, `${f}${suffix}.onnx`);
    if (!fs.existsSync(file)) fail(`${file}: not found`);
  }

  const tjs = await import('@huggingface/transformers');
  const { env, Tensor, AutoModelForSeq2SeqLM, AutoModelForSpeechSeq2Seq } = tjs;
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  env.useFSCache = false;      // no lookups in (or writes to) the package's .cache folder
  env.useBrowserCache = false;
  // A hub-style id (one path component) is looked up under env.localModelPath; anything that is not a
  // valid hub id (e.g. an absolute path) is used as a path as is.
  const name = path.basename(modelDir);
  let modelId = modelDir;
  if (/^[\w\-.]{1,96}$/.test(name) && !name.includes('..') && !name.includes('--') &&
      !name.endsWith('.git') && !name.endsWith('.ipynb') && /^\w/.test(name) && /\w$/.test(name)) {
    env.localModelPath = path.dirname(modelDir) + '/';
    modelId = name;
  }

  const Auto = isWhisper ? AutoModelForSpeechSeq2Seq : AutoModelForSeq2SeqLM;
  const model = await Auto.from_pretrained(modelId, {
    local_files_only: true,
    device: 'cpu',
    dtype,
    subfolder,
    session_options: { intraOpNumThreads: threads, interOpNumThreads: 1 },
  });

  let inputs, batch;
  if (isWhisper) {
    const f = readInput('input_features.npy', 'float32', 3);
    batch = f.dims[0];
    inputs = { input_features: new Tensor('float32', f.data, f.dims) };
  } else {
    const ids = readInput('input_ids.npy', 'int64', 2);
    const mask = readInput('attention_mask.npy', 'int64', 2);
    if (ids.dims.join() !== mask.dims.join()) {
      fail(`input_ids [${ids.dims}] and attention_mask [${mask.dims}] differ in shape`);
    }
    batch = ids.dims[0];
    inputs = {
      input_ids: new Tensor('int64', ids.data, ids.dims),
      attention_mask: new Tensor('int64', mask.data, mask.dims),
    };
  }

  const options = {
    ...inputs,
    max_new_tokens: newTokens,
    min_new_tokens: newTokens,  // inert: its processor needs an eos_token_id
    min_length: 0,
    do_sample: false,
    num_beams: 1,
    num_return_sequences: 1,
    eos_token_id: null,         // no EosTokenCriteria, no MinLength/MinNewTokens EOS masking
    forced_bos_token_id: null,
    forced_eos_token_id: null,
    suppress_tokens: null,
    begin_suppress_tokens: null,
    bad_words_ids: null,
    no_repeat_ngram_size: 0,
    repetition_penalty: 1.0,
    guidance_scale: null,
    decoder_start_token_id: startId,
    return_dict_in_generate: false,
    output_attentions: false,
  };
  if (isWhisper) {
    // WhisperForConditionalGeneration.generate uses decoder_input_ids, when given, instead of building
    // <|startoftranscript|> <|lang|> <|task|> <|notimestamps|>; one row per batch item, because a flat
    // list counts as batch 1 and the encoder-output batch check rejects it for B > 1.
    options.decoder_input_ids = Array.from({ length: batch }, () => [startId]);
    options.return_timestamps = false;  // no WhisperTimeStampLogitsProcessor
    options.return_token_timestamps = false;
    options.forced_decoder_ids = null;
    options.language = null;
    options.task = null;
  }

  const seqs = await model.generate(options);
  const dims = seqs.dims;
  if (dims.length !== 2 || dims[0] !== batch || dims[1] !== 1 + newTokens) {
    fail(`generate returned shape [${dims.join(', ')}], expected [${batch}, ${1 + newTokens}]`);
  }
  const data = BigInt64Array.from(seqs.data, v => BigInt(v));
  for (let b = 0; b < batch; b++) {
    if (data[b * dims[1]] !== BigInt(startId)) fail(`row ${b} does not start with decoder_start_token_id ${startId}`);
  }
  writeNpy(outPath, 'int64', dims, data);
  await model.dispose();
} catch (e) {
  fail(e?.message ?? e);
}
