// Runnable copy of the README's 'paged' example (node examples/paged.mjs after npm run build).
import { PagedKvCache, attentionPaged, randn } from '../dist/index.js';
const cache = new PagedKvCache({ numLayers: 1, numKvHeads: 2, headDim: 64, blockSizeTokens: 16, numBlocks: 64, dtype: 'f16' });
const { id } = cache.addSequence();
const tokens = Array.from({ length: 100 }, (_, i) => i);
cache.append(id, tokens, { k: randn([1, 100, 2, 64], 1), v: randn([1, 100, 2, 64], 2) }); // [layers, tokens, kvHeads, dim]
const t = cache.batch([id]);                                   // block tables + seqLens
const { out } = await attentionPaged(randn([1, 1, 8, 64], 3), cache, 0, t, t.seqLens); // a decode step, GQA 8/2
console.log(out.shape, cache.stats().usedBlocks); // [1, 1, 8, 64] 7
