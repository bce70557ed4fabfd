// Runnable copy of the README's 'cost' example (node examples/cost.mjs after npm run build).
import { attentionCost, deviceProfile, attentionRoofline, kvCacheSize } from '../dist/index.js';
const cost = attentionCost({ batch: 1, seqLenQ: 5329, numHeads: 16, headDim: 80 });
console.log(cost.flops.total, attentionRoofline(cost, deviceProfile('h200')).bound);
console.log(kvCacheSize({ numLayers: 32, numKvHeads: 8, seqLen: 2112, headDim: 128, dtype: 'f16' }).contiguousBytes); // 276.8 MB
