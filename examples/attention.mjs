// Runnable copy of the README's 'attention' example (node examples/attention.mjs after npm run build).
import { attention, randn, causal, slidingWindow, prefixLM } from '../dist/index.js';

// q [batch, seqLenQ, numHeads, headDim], k/v [batch, seqLenK, numKvHeads, headDim] (BSHD, as FlashAttention)
const q = randn([1, 577, 16, 64], 1), k = randn([1, 577, 4, 64], 2), v = randn([1, 577, 4, 64], 3);
const { out, lse } = await attention(q, k, v, { mask: causal(), returnLse: true }); // GQA 16/4
console.log(out.shape, lse.shape); // [1, 577, 16, 64] [1, 16, 577]

// Masks compose; causal aligns bottom-right when seqLenQ ≠ seqLenK (FlashAttention ≥ 2.1).
const mask = causal().and(slidingWindow(128, 0)).or(prefixLM(256));
