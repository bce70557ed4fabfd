/**
 * Argument checks found by probing the API as a user: values the f32 kernels cannot hold, outputs that share
 * storage with inputs, options attentionVarlen would ignore, and plain TypeErrors that are now typed errors.
 */
import { describe, expect, it } from 'vitest';
import {
  MultiHeadAttention, PagedKvCache, Tensor, ValueError, attention, attentionPaged, attentionReference, attentionVarlen, documents, linear, randn, writeSafetensors,
} from '../../../src/index.js';

const qkv = (S = 20, H = 2, D = 8) => [randn([1, S, H, D], 1), randn([1, S, H, D], 2), randn([1, S, H, D], 3)] as const;

describe('scale and softcap must fit in f32', () => {
  it.each(['cpu-ts', 'wasm'] as const)('%s refuses values that overflow or underflow f32, naming the option', async (backend) => {
    const [q, k, v] = qkv();
    await expect(attention(q, k, v, { softcap: 1e39, backend })).rejects.toThrow(expect.objectContaining({ name: 'ValueError', argument: 'softcap' }));
    await expect(attention(q, k, v, { softcap: 1e-46, backend })).rejects.toThrow(expect.objectContaining({ argument: 'softcap' }));
    await expect(attention(q, k, v, { scale: 1e39, backend })).rejects.toThrow(expect.objectContaining({ argument: 'scale' }));
    await expect(attention(q, k, v, { scale: -1e-46, backend })).rejects.toThrow(expect.objectContaining({ argument: 'scale' }));
    // The extremes that do fit still run, and match the reference.
    const { out } = await attention(q, k, v, { softcap: 3e38, scale: 0, backend });
    expect(Math.max(...out.toFloat64().map((x, i) => Math.abs(x - attentionReference(q, k, v, { softcap: 3e38, scale: 0 }).out[i]!)))).toBeLessThan(1e-5);
  });
});

describe('outputs may not share storage with inputs', () => {
  it.each(['cpu-ts', 'wasm'] as const)('%s: out = v, out over q, lseOut inside out are refused', async (backend) => {
    const [q, k, v] = qkv();
    await expect(attention(q, k, v, { out: v, backend })).rejects.toThrow(expect.objectContaining({ name: 'ValueError', argument: 'out', message: expect.stringMatching(/overlaps the storage of v/) }));
    // A view onto q's storage (same buffer, overlapping bytes).
    const qView = new Tensor(q.data as Float32Array, q.shape, { offset: 0 });
    await expect(attention(q, k, v, { out: qView, backend })).rejects.toThrow(/overlaps the storage of q/);
    const out = Tensor.zeros([1, 20, 2, 8]);
    const lseOut = new Tensor(out.data as Float32Array, [1, 2, 20]);
    await expect(attention(q, k, v, { out, lseOut, backend })).rejects.toThrow(/lseOut overlaps the storage of out|out overlaps the storage of lseOut/);
  });
  it('disjoint views of one buffer are fine', async () => {
    const buf = new Float32Array(2 * 20 * 2 * 8);
    const a = new Tensor(buf, [1, 20, 2, 8]);
    const b = new Tensor(buf, [1, 20, 2, 8], { offset: 320 });
    a.data.set(randn([1, 20, 2, 8], 5).toFloat32());
    const { out } = await attention(a, a, a, { out: b, backend: 'cpu-ts' });
    expect(out).toBe(b);
    expect(Number.isFinite(b.toFloat32()[0]!)).toBe(true);
  });
});

describe('attentionVarlen options', () => {
  const q = randn([6, 2, 8], 1), k = randn([6, 2, 8], 2), v = randn([6, 2, 8], 3);
  it('a documents mask gets its own error, not a length error', async () => {
    await expect(attentionVarlen(q, k, v, { cuSeqlensQ: [0, 3, 6], mask: documents([0, 6]) })).rejects.toThrow(/documents mask cannot be used on packed sequences/);
  });
  it('a layout option is refused rather than ignored', async () => {
    await expect(attentionVarlen(q, k, v, { cuSeqlensQ: [0, 3, 6], layout: 'bhsd' } as never)).rejects.toThrow(expect.objectContaining({ name: 'ValueError', argument: 'layout' }));
    await expect(attentionVarlen(q, k, v, { cuSeqlensQ: [0, 3, 6], layout: 'nonsense' } as never)).rejects.toThrow(ValueError);
    await expect(attentionVarlen(q, k, v, { cuSeqlensQ: [0, 3, 6], layout: 'bshd' } as never)).resolves.toBeDefined();
  });
});

describe('option names and flags are checked, not ignored', () => {
  it('a misspelt option is refused with the nearest name (casual: true ran unmasked)', async () => {
    const [q, k, v] = qkv();
    await expect(attention(q, k, v, { casual: true } as never)).rejects.toThrow(expect.objectContaining({ name: 'ValueError', argument: 'casual', message: expect.stringMatching(/unknown option 'casual' for attention .*did you mean 'causal'/) }));
    await expect(attention(q, k, v, { returnLSE: true } as never)).rejects.toThrow(/did you mean 'returnLse'/);
    await expect(attention(q, k, v, { kvCache: {} } as never)).rejects.toThrow(/unknown option 'kvCache'/);
    // Undefined values are unset, as in a spread of optional fields.
    await expect(attention(q, k, v, { casual: undefined } as never)).resolves.toBeDefined();
    const [qv, kv, vv] = [randn([6, 2, 8], 1), randn([6, 2, 8], 2), randn([6, 2, 8], 3)];
    await expect(attentionVarlen(qv, kv, vv, { cuSeqlensQ: [0, 6], cu_seqlens_k: [0, 6] } as never)).rejects.toThrow(/unknown option 'cu_seqlens_k' for attentionVarlen/);
    const m = MultiHeadAttention.init({ embedDim: 16, numHeads: 2 });
    await expect(m.forward(randn([1, 4, 16], 1), { kvCache: {} } as never)).rejects.toThrow(/unknown option 'kvCache' for forward/);
    const cache = new PagedKvCache({ numLayers: 1, numKvHeads: 2, headDim: 8, blockSizeTokens: 4, numBlocks: 4 });
    const { id } = cache.addSequence();
    cache.append(id, [1, 2, 3], { k: randn([1, 3, 2, 8], 1), v: randn([1, 3, 2, 8], 2) });
    const t = cache.batch([id]);
    await expect(attentionPaged(randn([1, 1, 2, 8], 3), cache, 0, t, t.seqLens, { casual: true } as never)).rejects.toThrow(/unknown option 'casual' for attentionPaged .*did you mean 'causal'/);
  });
  it('causal and returnLse must be booleans (the string "false" is truthy)', async () => {
    const [q, k, v] = qkv();
    await expect(attention(q, k, v, { causal: 'false' } as never)).rejects.toThrow(expect.objectContaining({ name: 'ValueError', argument: 'causal' }));
    await expect(attention(q, k, v, { returnLse: 1 } as never)).rejects.toThrow(expect.objectContaining({ argument: 'returnLse' }));
    await expect(attention(q, k, v, { causal: null } as never)).resolves.toBeDefined();
  });
});

describe('typed errors instead of TypeErrors', () => {
  it('attention with null options runs with the defaults', async () => {
    const [q, k, v] = qkv();
    const a = await attention(q, k, v, null as never);
    const b = await attention(q, k, v);
    expect(a.out.toFloat32()).toEqual(b.out.toFloat32());
  });
  it('asBSHD and permute name their argument', () => {
    const t = randn([1, 2, 3, 4], 1);
    expect(() => t.asBSHD('bsdh' as never)).toThrow(expect.objectContaining({ name: 'ValueError', argument: 'layout' }));
    expect(() => t.permute([0.5, 1, 2, 3])).toThrow(expect.objectContaining({ name: 'ShapeError', argument: 'order' }));
  });
  it('module forward and linear refuse non-tensors', async () => {
    const m = MultiHeadAttention.init({ embedDim: 8, numHeads: 2 });
    await expect(m.forward([1, 2, 3] as never)).rejects.toThrow(expect.objectContaining({ name: 'ValueError', argument: 'x' }));
    await expect(linear({} as never, randn([3, 4], 1))).rejects.toThrow(expect.objectContaining({ argument: 'x' }));
  });
  it('fromSafetensors with a missing prefix suggests the one the names carry', () => {
    const m = MultiHeadAttention.init({ embedDim: 8, numHeads: 2 });
    const bytes = m.toSafetensors({ prefix: 'model.layers.0.self_attn.' });
    expect(() => MultiHeadAttention.fromSafetensors(bytes, { embedDim: 8, numHeads: 2 })).toThrow(/did you mean prefix 'model\.layers\.0\.self_attn\.'/);
    expect(() => MultiHeadAttention.fromSafetensors(writeSafetensors({}), { embedDim: 8, numHeads: 2 })).toThrow(/neither 'q_proj.weight' nor 'in_proj_weight'/);
  });
});

describe('linear with zero-sized dimensions', () => {
  it.each(['cpu-ts', 'wasm'] as const)('%s: inFeatures 0 gives the bias (as PyTorch Linear(0, n)); empty batches give empty outputs', async (backend) => {
    const bias = Tensor.fromValues([1, 2, 3], [3]);
    const y = await linear(Tensor.zeros([4, 0]), Tensor.zeros([3, 0]), bias, { backend });
    expect([...y.shape]).toEqual([4, 3]);
    expect([...y.toFloat32()]).toEqual([1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3]);
    expect([...(await linear(Tensor.zeros([4, 0]), Tensor.zeros([3, 0]), null, { backend })).toFloat32()]).toEqual(new Array(12).fill(0));
    const e = await linear(Tensor.zeros([0, 5]), randn([3, 5], 1), bias, { backend });
    expect([...e.shape]).toEqual([0, 3]);
  });
});
