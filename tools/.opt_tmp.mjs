import ort from 'onnxruntime-node';
const t0 = performance.now();
await ort.InferenceSession.create(process.argv[2], { intraOpNumThreads: 1, optimizedModelFilePath: process.argv[3], graphOptimizationLevel: 'basic' });
console.log('session', ((performance.now() - t0) / 1000).toFixed(2), 's');
