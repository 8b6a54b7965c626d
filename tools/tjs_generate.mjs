// Greedy generation with transformers.js (@huggingface/transformers 4.3.2 and the onnxruntime-node it pins),
// the client hf2onnx's folders are made for. Fully offline.
//   node tools/tjs_generate.mjs MODEL_DIR INPUT_DIR NEW_TOKENS OUT.npy [--dtype fp32|q8] [--threads N]
//                               [--subfolder DIR]
// MODEL_DIR is loaded exactly as transformers.js loads a hub repository: config.json and
// generation_config.json (optional) at the root, the ONNX files in its default subfolder onnx/
// (--subfolder '' for Optimum's layout, everything at the root): model.onnx for decoder-only models,
// encoder_model.onnx + decoder_model_merged.onnx for encoder-decoder ones (--dtype q8: *_quantized.onnx).
// INPUT_DIR holds input_ids.npy + attention_mask.npy (int64 [B, S]; decoder-only prompts may be left-padded),
// or input_features.npy (float32 [B, n_mels, frames]) for whisper (model_type in config.json).
// OUT.npy gets int64 [B, S + NEW_TOKENS] for decoder-only models (the prompt, then the new tokens), and
// [B, 1 + NEW_TOKENS] for encoder-decoder ones (decoder_start_token_id, then the new tokens): each the raw
// argmax of its step's logits. Every logits processor is off, and eos_token_id is cleared so that no row
// stops early and EOS is not masked (with an EOS id, min_new_tokens works by masking EOS).
import fs from 'node:fs';
import path from 'node:path';
import { command } from './cli.mjs';
import { readNpy, writeNpy } from './npy.mjs';

const { args, fail, option } = command('tjs_generate');
const dtype = option('--dtype', 'fp32');
const threads = Number(option('--threads', '1'));
const subfolderOption = option('--subfolder', undefined);  // undefined: transformers.js's default (onnx)
if (args.length !== 4) {
  fail('usage: tjs_generate.mjs MODEL_DIR INPUT_DIR NEW_TOKENS OUT.npy [--dtype fp32|q8] [--threads N] [--subfolder DIR]');
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
  const seq2seq = config.is_encoder_decoder === true;  // transformers.js sizes the empty cache from it
  const isWhisper = modelType === 'whisper';
  // The order transformers.js merges them in: config.json, then generation_config.json.
  const startId = genConfig.decoder_start_token_id ?? config.decoder_start_token_id ??
                  genConfig.bos_token_id ?? config.bos_token_id;
  if (seq2seq && !Number.isInteger(startId)) {
    fail('no integer decoder_start_token_id in generation_config.json or config.json');
  }

  const suffix = dtype === 'q8' ? '_quantized' : '';
  for (const f of seq2seq ? ['encoder_model', 'decoder_model_merged'] : ['model']) {
    const file = path.join(modelDir, subfolderOption ?? 'onnx', `${f}${suffix}.onnx`);
    if (!fs.existsSync(file)) fail(`${file}: not found`);
  }

  const tjs = await import('@huggingface/transformers');
  const { env, Tensor, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoModelForSpeechSeq2Seq } = tjs;
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

  const Auto = !seq2seq ? AutoModelForCausalLM : isWhisper ? AutoModelForSpeechSeq2Seq : AutoModelForSeq2SeqLM;
  const model = await Auto.from_pretrained(modelId, {
    local_files_only: true,
    device: 'cpu',
    dtype,
    ...(subfolderOption === undefined ? {} : { subfolder: subfolderOption }),
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
    return_dict_in_generate: false,
    output_attentions: false,
  };
  if (seq2seq) options.decoder_start_token_id = startId;
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
  const prompt = seq2seq ? 1 : inputs.input_ids.dims[1];
  if (dims.length !== 2 || dims[0] !== batch || dims[1] !== prompt + newTokens) {
    fail(`generate returned shape [${dims.join(', ')}], expected [${batch}, ${prompt + newTokens}]`);
  }
  const data = BigInt64Array.from(seqs.data, v => BigInt(v));
  for (let b = 0; b < batch && seq2seq; b++) {
    if (data[b * dims[1]] !== BigInt(startId)) fail(`row ${b} does not start with decoder_start_token_id ${startId}`);
  }
  writeNpy(outPath, 'int64', dims, data);
  await model.dispose();
} catch (e) {
  fail(e?.message ?? e);
}
