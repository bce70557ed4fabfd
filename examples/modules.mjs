// Runnable copy of the README's 'modules' example (node examples/modules.mjs after npm run build).
import { GroupedQueryAttention, randn } from '../dist/index.js';
// A Llama-style GQA layer: q_proj/k_proj/v_proj/o_proj weights are [out, in], as PyTorch's nn.Linear keeps them.
const config = { embedDim: 256, numHeads: 8, numKvHeads: 2 };
const bytes = GroupedQueryAttention.init(config, 1).toSafetensors({ prefix: 'model.layers.0.self_attn.' }); // or a checkpoint's bytes
const layer = GroupedQueryAttention.fromSafetensors(bytes, config, { prefix: 'model.layers.0.self_attn.' });
const { out } = await layer.forward(randn([1, 100, 256], 2), { causal: true }); // x [batch, seqLen, embedDim]
console.log(out.shape); // [1, 100, 256]
