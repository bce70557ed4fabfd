/**
 * Bad input gets a typed error naming the argument and the dimension, never a silent wrong answer.
 */
import { describe, expect, it } from 'vitest';
import {
  DTypeError, ShapeError, Tensor, UnsupportedError, ValueError, attention, attentionVarlen, blockSparse, keySubset, prefixLM,
  randn, slidingWindow, strided, topK, documents, causal, configureCpu, keyImportance, attentionReference,
} from '../../../src/index.js';

const q = randn([1, 8, 4, 16], 1), k = randn([1, 10, 2, 16], 2), v = randn([1, 10, 2, 16], 3);

async function rejects(p: Promise<unknown>, cls: new (...a: never[]) => Error, fields: Record<string, unknown> = {}, msg?: RegExp) {
  const e = await p.then(() => null, (x: unknown) => x);
  expect(e, 'expected an error').toBeInstanceOf(cls);
  for (const [k2, val] of Object.entries(fields)) expect((e as Record<string, unknown>)[k2]).toBe(val);
  if (msg) expect((e as Error).message).toMatch(msg);
}

describe('typed errors', () => {
  it('mismatched shapes name the argument and dimension', async () => {
    await rejects(attention(q, randn([1, 10, 2, 15], 2), v), ShapeError, { argument: 'k', dimension: 'headDim' }, /headDim 15/);
    await rejects(attention(q, k, randn([1, 9, 2, 16], 3)), ShapeError, { argument: 'v', dimension: 'seqLenK' });
    await rejects(attention(q, k, randn([1, 10, 1, 16], 3)), ShapeError, { argument: 'v', dimension: 'numKvHeads' });
    await rejects(attention(q, randn([2, 10, 2, 16], 2), v), ShapeError, { argument: 'k', dimension: 'batch' });
    await rejects(attention(randn([8, 4, 16], 1), k, v), ShapeError, { argument: 'q' }, /4-D/);
  });

  it('numHeads not divisible by numKvHeads', async () => {
    await rejects(attention(randn([1, 8, 3, 16], 1), k, v), ShapeError, { argument: 'k', dimension: 'numKvHeads' }, /divisible/);
  });

  it('head dims outside 1..256', async () => {
    await rejects(attention(randn([1, 4, 1, 257], 1), randn([1, 4, 1, 257], 2), randn([1, 4, 1, 8], 3)), ShapeError, { dimension: 'headDim' });
  });

  it('wrong or mixed dtypes', async () => {
    await rejects(attention(q.to('f16'), k, v), DTypeError, { argument: 'k' });
    expect(() => new Tensor(new Uint16Array(4), [4])).toThrow(DTypeError);
    expect(() => new Tensor(new Float32Array(4), [4], { dtype: 'f16' })).toThrow(DTypeError);
  });

  it('NaN or Infinity in options', async () => {
    await rejects(attention(q, k, v, { scale: NaN }), ValueError, { argument: 'scale' });
    await rejects(attention(q, k, v, { scale: Infinity }), ValueError, { argument: 'scale' });
    await rejects(attention(q, k, v, { softcap: Infinity }), ValueError, { argument: 'softcap' });
    await rejects(attention(q, k, v, { softcap: -1 }), ValueError, { argument: 'softcap' });
    await rejects(attention(q, k, v, { layout: 'sbhd' as never }), ValueError, { argument: 'layout' });
  });

  it('negative or fractional windows and strides', () => {
    expect(() => slidingWindow(-2, 0)).toThrow(ValueError);
    expect(() => slidingWindow(1.5, 0)).toThrow(ValueError);
    expect(() => slidingWindow(NaN, 0)).toThrow(ValueError);
    expect(() => strided(0)).toThrow(ValueError);
    expect(() => prefixLM(-1)).toThrow(ValueError);
    expect(() => topK(0)).toThrow(ValueError);
    expect(() => topK(2, topK(3))).toThrow(UnsupportedError);
  });

  it('non-monotone or out-of-range cuSeqlens', async () => {
    const qv = randn([10, 2, 8], 1), kv = randn([10, 2, 8], 2), vv = randn([10, 2, 8], 3);
    await rejects(attentionVarlen(qv, kv, vv, { cuSeqlensQ: [0, 6, 4, 10] }), ValueError, { argument: 'cuSeqlensQ' }, /non-decreasing/);
    await rejects(attentionVarlen(qv, kv, vv, { cuSeqlensQ: [0, 4, 12] }), ValueError, { argument: 'cuSeqlensQ' }, /packed length is 10/);
    await rejects(attentionVarlen(qv, kv, vv, { cuSeqlensQ: [1, 4, 10] }), ValueError, { argument: 'cuSeqlensQ' }, /must be 0/);
    await rejects(attentionVarlen(qv, kv, vv, { cuSeqlensQ: [0, 4.5, 10] }), ValueError, { argument: 'cuSeqlensQ' });
    await rejects(attentionVarlen(qv, kv, vv, { cuSeqlensQ: [0, 5, 10], cuSeqlensK: [0, 10] }), ShapeError, { argument: 'cuSeqlensK' });
    await rejects(attentionVarlen(qv, kv, vv, { cuSeqlensQ: [0, 5, 10], mask: documents([0, 5]) }), ValueError, { argument: 'mask' });
  });

  it('mask data that does not cover the shapes', async () => {
    await rejects(attention(q, k, v, { mask: blockSparse([[1]], 4) }), ShapeError, { dimension: 'seqLenQ' });
    await rejects(attention(q, k, v, { mask: keySubset([1, 0, 1]) }), ShapeError, { dimension: 'seqLenK' });
    await rejects(attention(q, k, v, { mask: documents([0, 8], [0, 9]) }), ShapeError, { dimension: 'seqLenK' });
    // The float64 oracle refuses them too (it computed an answer the kernels never give).
    for (const mask of [blockSparse([[1]], 4), keySubset([1, 0, 1]), documents([0, 8], [0, 9])]) {
      expect(() => attentionReference(q, k, v, { mask })).toThrow(ShapeError);
    }
  });

  it('tensor views and indices: integers inside the storage and the shape', () => {
    const data = new Float32Array(6);
    expect(() => new Tensor(data, [2, 3], { offset: Number.NaN })).toThrow(expect.objectContaining({ argument: 'offset' }));
    expect(() => new Tensor(data, [2, 3], { offset: 0.5 })).toThrow(ShapeError);
    expect(() => new Tensor(data, [2, 3], { strides: [1.5, 1] })).toThrow(expect.objectContaining({ argument: 'strides' }));
    const t = new Tensor(data, [2, 3]);
    expect(() => t.get(0, 5)).toThrow(expect.objectContaining({ argument: 'idx', dimension: 'dim1' }));
    expect(() => t.set(1, 0, 3)).toThrow(ShapeError);
    expect(() => Tensor.zeros([1e6, 1e6])).toThrow(ShapeError);
    expect(() => Tensor.zeros([2], 'i8' as never)).toThrow(/dtype must be 'f32', 'f16' or 'bf16'/);
    expect(() => new Tensor(new Float64Array(2) as never, [2])).toThrow(expect.objectContaining({ argument: 'data' }));
  });

  it('inputs and outputs that are not tensors name themselves', async () => {
    const fake = { shape: [1, 8, 4, 16], dtype: 'f32' };
    await rejects(attention(fake as never, k, v), ValueError, { argument: 'q' });
    const pending = Promise.resolve(Tensor.zeros([1, 8, 4, 16]));
    await rejects(attention(q, k, v, { out: pending as never }), ValueError, { argument: 'out' }, /await it/);
    // An output whose rows alias one another would keep only the last row written.
    await rejects(attention(q, k, v, { out: new Tensor(new Float32Array(16), [1, 8, 4, 16], { strides: [0, 0, 0, 1] }) }), ShapeError, { argument: 'out' }, /overlap/);
  });

  it('mask builders check their arguments', async () => {
    expect(() => keyImportance([1, 2, 3], undefined as never)).toThrow(ValueError);
    expect(() => keyImportance([1, 2, 3], { keep: 1, threshold: 2 })).toThrow(expect.objectContaining({ argument: 'opts' }));
    expect(() => blockSparse([1, 1, 1, 1], 4, [-1, -4])).toThrow(expect.objectContaining({ argument: 'shape' }));
    expect(() => blockSparse([1, 1], 4, [1.5, 2] as never)).toThrow(ShapeError);
    const qv = randn([5, 2, 8], 1);
    await rejects(attentionVarlen(qv, qv, qv, { cuSeqlensQ: [0, 2 ** 31 + 10], cuSeqlensK: [0, 5] }), ValueError, { argument: 'cuSeqlensQ' }, /int32/);
    await rejects(attentionVarlen(qv, qv, qv, { cuSeqlensQ: BigInt64Array.from([0n, 5n]) as never, cuSeqlensK: [0, 5] }), ValueError, {}, /BigInt/);
    // Strings among the offsets say so (not "got 0"); a missing or mistyped block size is a ValueError, not a TypeError.
    await rejects(attentionVarlen(qv, qv, qv, { cuSeqlensQ: ['0', '5'] as never }), ValueError, { argument: 'cuSeqlensQ' }, /"0" \(a string/);
    expect(() => (blockSparse as (...a: unknown[]) => unknown)([[1, 0], [1, 1]])).toThrow(expect.objectContaining({ name: 'ValueError', argument: 'blockSize' }));
    expect(() => blockSparse([[1, 0], [1, 1]], { blockQ: 4 } as never)).toThrow(expect.objectContaining({ name: 'ValueError', argument: 'blockSize' }));
    expect(() => blockSparse([[1]], '4' as never)).toThrow(/"4"/);
  });

  it('varlen: keys that cannot split as the queries do, and per-sequence mask errors, name the argument', async () => {
    const qv = randn([10, 2, 8], 1), kv = randn([12, 2, 8], 2);
    await rejects(attentionVarlen(qv, kv, kv, { cuSeqlensQ: [0, 4, 10] }), ShapeError, { argument: 'cuSeqlensK' }, /not given.*12 keys/);
    await rejects(attentionVarlen(qv, qv, qv, { cuSeqlensQ: [0, 4, 10], mask: keySubset([1, 0, 1]) }), ShapeError, { argument: 'mask', dimension: 'seqLenK' }, /mask \(sequence 0\)/);
  });

  it('options that are not what they say: align, CPU configuration', async () => {
    expect(() => causal({ align: 'top' as never })).toThrow(expect.objectContaining({ argument: 'align' }));
    expect(() => slidingWindow(4, 0, { align: 'bottom' as never })).toThrow(ValueError);
    expect(() => causal({ align: 'top-left' })).not.toThrow();
    for (const bad of [{ threads: 0 }, { threads: 1.5 }, { threads: Number.NaN }, { threads: '2' }, { threads: 257 }]) await rejects(configureCpu(bad as never), ValueError, { argument: 'threads' });
    await rejects(configureCpu({ relaxedSimd: 'no' as never }), ValueError, { argument: 'relaxedSimd' });
    await rejects(configureCpu(null as never), ValueError);
  });

  it('unknown backends name the known ones', async () => {
    await rejects(attention(q, k, v, { backend: 'cuda' as never }), UnsupportedError, {}, /nearest supported: .*wasm/);
  });

  it('empty sequences are defined: zeros and lse −∞', async () => {
    const r = await attention(randn([1, 3, 1, 8], 1), Tensor.zeros([1, 0, 1, 8]), Tensor.zeros([1, 0, 1, 8]), { returnLse: true });
    expect(Array.from(r.out.toFloat32())).toEqual(new Array(24).fill(0));
    expect(Array.from(r.lse!.toFloat32())).toEqual([-Infinity, -Infinity, -Infinity]);
  });
});
