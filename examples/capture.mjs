// Runnable copy of the README's 'capture' example (node examples/capture.mjs after npm run build).
import { attention, columnSums, probabilityRows, topKeys, randn } from '../dist/index.js';
const q = randn([1, 64, 8, 64], 1), k = randn([1, 729, 8, 64], 2), v = randn([1, 729, 8, 64], 3);
const { lse } = await attention(q, k, v, { returnLse: true });
const received = await columnSums(q, k, { lse });            // [1, 8, 729] attention received per key
const rows = await probabilityRows(q, k, [0, 63], { lse });   // [1, 8, 2, 729]
const best = await topKeys(q, k, [0], 5, { lse });            // 5 most attended keys of query 0
