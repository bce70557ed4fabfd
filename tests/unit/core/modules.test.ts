/**
 * Attention modules (MHA / GQA / MQA with projections) and linear layers against a float64
 * reference, on every backend that runs here; weights round-trip through safetensors, including the
 * fused nn.MultiheadAttention names.
 */
import { describe, expect, it } from 'vitest';
import {
  GroupedQueryAttention, MultiHeadAttention, MultiQueryAttention, ShapeError, Tensor, UnsupportedError, ValueError, attentionReference, causal, linear,
  parseSafetensors, randn, writeSafetensors,
} from '../../../src/index.js';
import { expectClose } from '../../helpers/close.js';

function linearRef(x: Float64Array, M: number, K: number, w: Tensor, b: Tensor | null | undefined): Float64Array {
  const W = w.toFloat64(), Bv = b?.toFloat64(), N = w.shape[0]!;
  const y = new Float64Array(M * N);
  for (let i = 0; i < M; i++) for (let n = 0; n < N; n++) {
    let s = Bv ? Bv[n]! : 0;
    for (let k = 0; k < K; k++) s += x[i * K + k]! * W[n * K + k]!;
    y[i * N + n] = s;
  }
  return y;
}

function moduleRef(m: GroupedQueryAttention, x: Tensor, ctx: Tensor, mask = null as ReturnType<typeof causal> | null): Float64Array {
  const { embedDim: E, numHeads: H, numKvHeads: Hk, headDim: Dh } = m.config;
  const [B, S] = x.shape as [number, number];
  const Sk = ctx.shape[1]!;
  const w = m.weights;
  const q = linearRef(x.toFloat64(), B * S, E, w.q, w.qBias), k = linearRef(ctx.toFloat64(), B * Sk, E, w.k, w.kBias), v = linearRef(ctx.toFloat64(), B * Sk, E, w.v, w.vBias);
  const t = (a: Float64Array, shape: number[]) => Tensor.fromValues(a, shape, 'f32');
  const r = attentionReference(t(q, [B, S, H, Dh]), t(k, [B, Sk, Hk, Dh]), t(v, [B, Sk, Hk, Dh]), { mask });
  return linearRef(r.out, B * S, H * Dh, w.o, w.oBias);
}

describe('linear', () => {
  for (const backend of ['wasm', 'cpu-ts', 'webgpu'] as const) {
    it(`${backend}: odd sizes against float64`, async () => {
      for (const [M, K, N] of [[1, 1, 1], [3, 7, 5], [37, 61, 130], [64, 128, 96]]) {
        const x = randn([M, K], M + K), w = randn([N, K], N), b = randn([N], 3);
        const y = await linear(x, w, b, { backend });
        expectClose(y.toFloat64(), linearRef(x.toFloat64(), M, K, w, b), { atol: 2e-5 * Math.sqrt(K), label: `linear ${M}×${K}×${N}` });
      }
    }, 120_000);
  }
  it('rejects mismatched shapes', async () => {
    await expect(linear(randn([2, 5], 1), randn([3, 4], 2))).rejects.toThrow(ShapeError);
    await expect(linear(randn([2, 4], 1), randn([3, 4], 2), randn([4], 3))).rejects.toThrow(ShapeError);
  });
});

describe('attention modules', () => {
  const cases = [
    { name: 'MHA self, causal', make: () => MultiHeadAttention.init({ embedDim: 48, numHeads: 4 }, 1), B: 2, S: 37, Sk: 37, causal: true },
    { name: 'GQA cross-attention', make: () => GroupedQueryAttention.init({ embedDim: 64, numHeads: 8, numKvHeads: 2 }, 2), B: 1, S: 19, Sk: 70, causal: false },
    { name: 'MQA, headDim ≠ embedDim/numHeads, no bias', make: () => MultiQueryAttention.init({ embedDim: 40, numHeads: 4, headDim: 24, bias: false }, 3), B: 1, S: 33, Sk: 33, causal: true },
  ];
  for (const c of cases) {
    for (const backend of ['wasm', 'cpu-ts', 'webgpu'] as const) {
      it(`${c.name} (${backend})`, async () => {
        const m = c.make();
        const E = m.config.embedDim;
        const x = randn([c.B, c.S, E], 5), ctx = c.S === c.Sk ? x : randn([c.B, c.Sk, E], 6);
        const mask = c.causal ? causal() : null;
        const got = await m.forward(x, { context: c.S === c.Sk ? undefined : ctx, mask, backend });
        expectClose(got.out.toFloat64(), moduleRef(m, x, ctx, mask), { atol: 2e-5, label: c.name });
      }, 120_000);
    }
  }

  it('weights round-trip through safetensors, and fused in_proj names load', async () => {
    const m = GroupedQueryAttention.init({ embedDim: 32, numHeads: 4, numKvHeads: 2 }, 9);
    const again = GroupedQueryAttention.fromSafetensors(m.toSafetensors({ prefix: 'layers.0.attn.' }), { embedDim: 32, numHeads: 4, numKvHeads: 2 }, { prefix: 'layers.0.attn.' });
    const x = randn([1, 9, 32], 4);
    expectClose((await again.forward(x)).out.toFloat64(), (await m.forward(x)).out.toFloat64(), { atol: 0, label: 'round trip' });
    const mha = MultiHeadAttention.init({ embedDim: 16, numHeads: 2 }, 5);
    const w = mha.weights;
    const fused = Tensor.fromValues([...w.q.toFloat32(), ...w.k.toFloat32(), ...w.v.toFloat32()], [48, 16]);
    const fusedB = Tensor.fromValues([...w.qBias!.toFloat32(), ...w.kBias!.toFloat32(), ...w.vBias!.toFloat32()], [48]);
    const nd = (t: Tensor) => ({ dtype: 'f32' as const, shape: [...t.shape], data: t.contiguous().data as Float32Array });
    const bytes = writeSafetensors({ in_proj_weight: nd(fused), in_proj_bias: nd(fusedB), 'out_proj.weight': nd(w.o), 'out_proj.bias': nd(w.oBias!) });
    const loaded = MultiHeadAttention.fromSafetensors(bytes, { embedDim: 16, numHeads: 2 });
    const y = randn([2, 5, 16], 8);
    expectClose((await loaded.forward(y)).out.toFloat64(), (await mha.forward(y)).out.toFloat64(), { atol: 0, label: 'fused names' });
  });

  it('fused in_proj weights keep their bf16 dtype and bits, like the separate names', () => {
    const mha = MultiHeadAttention.init({ embedDim: 16, numHeads: 2 }, 6);
    const w = mha.weights;
    const bf = (t: Tensor) => { const c = t.to('bf16').contiguous(); return { dtype: 'bf16' as const, shape: [...c.shape], data: c.data as Uint16Array }; };
    const fused = Tensor.fromValues([...w.q.toFloat32(), ...w.k.toFloat32(), ...w.v.toFloat32()], [48, 16]);
    const fusedB = Tensor.fromValues([...w.qBias!.toFloat32(), ...w.kBias!.toFloat32(), ...w.vBias!.toFloat32()], [48]);
    const loaded = MultiHeadAttention.fromSafetensors(writeSafetensors({ in_proj_weight: bf(fused), in_proj_bias: bf(fusedB), 'out_proj.weight': bf(w.o) }), { embedDim: 16, numHeads: 2 });
    const separate = MultiHeadAttention.fromSafetensors(writeSafetensors({
      'q_proj.weight': bf(w.q), 'k_proj.weight': bf(w.k), 'v_proj.weight': bf(w.v), 'o_proj.weight': bf(w.o),
      'q_proj.bias': bf(w.qBias!), 'k_proj.bias': bf(w.kBias!), 'v_proj.bias': bf(w.vBias!),
    }), { embedDim: 16, numHeads: 2 });
    for (const key of ['q', 'k', 'v', 'o', 'qBias', 'kBias', 'vBias'] as const) {
      const a = loaded.weights[key]!, b = separate.weights[key]!;
      expect(a.dtype, key).toBe('bf16');
      expect([...a.shape], key).toEqual([...b.shape]);
      expect(a.contiguous().data, key).toEqual(b.contiguous().data);
    }
  });

  it('fromSafetensors decodes only its layer: other tensors of dtypes the reader cannot decode do not stop it; add_bias_kv is refused', async () => {
    const mha = MultiHeadAttention.init({ embedDim: 16, numHeads: 2 }, 9);
    const layer = mha.toSafetensors({ prefix: 'l0.' });
    // Append an F8_E4M3 tensor of another layer to the header and the buffer (the published layout).
    const n = Number(new DataView(layer.buffer, layer.byteOffset).getBigUint64(0, true));
    const header = JSON.parse(new TextDecoder().decode(layer.subarray(8, 8 + n))) as Record<string, { data_offsets: number[] }>;
    const bufLen = layer.length - 8 - n;
    header['l1.q_proj.weight'] = { dtype: 'F8_E4M3', shape: [4, 2], data_offsets: [bufLen, bufLen + 8] } as never;
    const json = new TextEncoder().encode(JSON.stringify(header));
    const file = new Uint8Array(8 + json.length + bufLen + 8);
    new DataView(file.buffer).setBigUint64(0, BigInt(json.length), true);
    file.set(json, 8); file.set(layer.subarray(8 + n), 8 + json.length);
    expect(() => parseSafetensors(file)).toThrow(UnsupportedError);
    const loaded = MultiHeadAttention.fromSafetensors(file, { embedDim: 16, numHeads: 2 }, { prefix: 'l0.' });
    const x = randn([1, 3, 16], 2);
    expectClose((await loaded.forward(x)).out.toFloat64(), (await mha.forward(x)).out.toFloat64(), { atol: 0, label: 'layer beside an F8 tensor' });
    // The F8 layer itself is refused by name.
    expect(() => MultiHeadAttention.fromSafetensors(file, { embedDim: 16, numHeads: 2 }, { prefix: 'l1.' })).toThrow(/l1\.q_proj\.weight.*F8_E4M3/);
    // nn.MultiheadAttention(add_bias_kv=True) stores bias_k/bias_v: computing without them would be silently wrong.
    const nd = (t: Tensor) => ({ dtype: 'f32' as const, shape: [...t.shape], data: t.contiguous().data as Float32Array });
    const w = mha.weights;
    const withBiasKv = writeSafetensors({
      in_proj_weight: nd(Tensor.fromValues([...w.q.toFloat32(), ...w.k.toFloat32(), ...w.v.toFloat32()], [48, 16])),
      'out_proj.weight': nd(w.o), bias_k: nd(randn([1, 1, 16], 3)), bias_v: nd(randn([1, 1, 16], 4)),
    });
    expect(() => MultiHeadAttention.fromSafetensors(withBiasKv, { embedDim: 16, numHeads: 2 })).toThrow(expect.objectContaining({ name: 'UnsupportedError', message: expect.stringMatching(/bias_k.*bias_v.*add_bias_kv/) }));
  });

  it('bad configs and inputs get typed errors', async () => {
    expect(() => GroupedQueryAttention.init({ embedDim: 30, numHeads: 4 })).toThrow(ShapeError);
    expect(() => GroupedQueryAttention.init({ embedDim: 32, numHeads: 4, numKvHeads: 3 })).toThrow(ShapeError);
    expect(() => MultiQueryAttention.init({ embedDim: 32, numHeads: 4, numKvHeads: 2 })).toThrow(ValueError);
    const m = MultiHeadAttention.init({ embedDim: 16, numHeads: 2 });
    await expect(m.forward(randn([1, 4, 15], 1))).rejects.toThrow(ShapeError);
    expect(() => MultiHeadAttention.fromSafetensors(writeSafetensors({}), { embedDim: 16, numHeads: 2 })).toThrow(/neither/);
    // A fused in_proj of another layout (MHA's 48 rows for a GQA module that needs 32) is refused, not cut short.
    const w = m.weights;
    const nd = (t: Tensor) => ({ dtype: 'f32' as const, shape: [...t.shape], data: t.contiguous().data as Float32Array });
    const fused = Tensor.fromValues([...w.q.toFloat32(), ...w.k.toFloat32(), ...w.v.toFloat32()], [48, 16]);
    const bytes = writeSafetensors({ in_proj_weight: nd(fused), 'out_proj.weight': nd(w.o) });
    expect(() => GroupedQueryAttention.fromSafetensors(bytes, { embedDim: 16, numHeads: 4, numKvHeads: 2 })).toThrow(expect.objectContaining({ name: 'ShapeError', dimension: 'in_proj_weight' }));
    // Required weights, head dims past the kernels', and a layout the module's BSHD tensors cannot take.
    expect(() => new GroupedQueryAttention({ embedDim: 16, numHeads: 2 }, { k: w.k, v: w.v, o: w.o } as never)).toThrow(expect.objectContaining({ argument: 'q' }));
    expect(() => GroupedQueryAttention.init({ embedDim: 600, numHeads: 2 })).toThrow(expect.objectContaining({ argument: 'headDim' }));
    await expect(m.forward(randn([1, 4, 16], 1), { layout: 'bhsd' } as never)).rejects.toThrow(UnsupportedError);
  });

  it('misspelt or mistyped config and prefix options are refused by name, not ignored', () => {
    // numKVHeads would otherwise build MHA in place of GQA; head_dim the default head dim; bias 'false' biases.
    expect(() => GroupedQueryAttention.init({ embedDim: 256, numHeads: 8, numKVHeads: 2 } as never)).toThrow(expect.objectContaining({ name: 'ValueError', argument: 'numKVHeads', message: expect.stringMatching(/numKvHeads/) }));
    expect(() => GroupedQueryAttention.init({ embedDim: 256, numHeads: 8, head_dim: 64 } as never)).toThrow(/did you mean 'headDim'/);
    expect(() => GroupedQueryAttention.init({ embedDim: 16, numHeads: 4, bias: 'false' } as never)).toThrow(expect.objectContaining({ argument: 'bias' }));
    expect(() => GroupedQueryAttention.init(null as never)).toThrow(expect.objectContaining({ argument: 'config' }));
    const m = GroupedQueryAttention.init({ embedDim: 16, numHeads: 4, numKvHeads: 2 }, 3);
    expect(() => m.toSafetensors({ prefx: 'l0.' } as never)).toThrow(/did you mean 'prefix'/);
    expect(() => m.toSafetensors({ prefix: 5 } as never)).toThrow(expect.objectContaining({ argument: 'prefix' }));
    const bytes = m.toSafetensors({ prefix: 'l0.' });
    expect(() => GroupedQueryAttention.fromSafetensors(bytes, { embedDim: 16, numHeads: 4, numKvHeads: 2 }, { Prefix: 'l0.' } as never)).toThrow(/did you mean 'prefix'/);
    expect(() => GroupedQueryAttention.fromSafetensors([1, 2] as never, { embedDim: 16, numHeads: 4 })).toThrow(expect.objectContaining({ name: 'ValueError', argument: 'bytes' }));
  });

  it('loaded weights: integer dtypes are DTypeErrors, wrong shapes name the file\'s tensor, and config.bias follows the biases', () => {
    const cfg = { embedDim: 8, numHeads: 2, numKvHeads: 1 };
    const m = GroupedQueryAttention.init(cfg, 4);
    const nd = (t: Tensor) => ({ dtype: 'f32' as const, shape: [...t.shape], data: t.contiguous().data as Float32Array });
    const w = m.weights;
    const hf = (over: Record<string, unknown>) => writeSafetensors({ 'q_proj.weight': nd(w.q), 'k_proj.weight': nd(w.k), 'v_proj.weight': nd(w.v), 'o_proj.weight': nd(w.o), ...over } as never);
    expect(() => GroupedQueryAttention.fromSafetensors(hf({ 'q_proj.weight': { dtype: 'i32', shape: [8, 8], data: new Int32Array(64) } }), cfg)).toThrow(expect.objectContaining({ name: 'DTypeError', argument: 'q_proj.weight' }));
    expect(() => GroupedQueryAttention.fromSafetensors(hf({ 'k_proj.weight': nd(randn([4, 6], 1)) }), cfg)).toThrow(expect.objectContaining({ name: 'ShapeError', dimension: 'k_proj.weight', message: expect.stringMatching(/k_proj\.weight must be \[4, 8\]/) }));
    // A fused in_proj with the right rows but the wrong columns names in_proj_weight (not q).
    const mha = MultiHeadAttention.init({ embedDim: 8, numHeads: 2 }, 5);
    const fusedBad = writeSafetensors({ in_proj_weight: nd(randn([24, 4], 2)), 'out_proj.weight': nd(mha.weights.o) });
    expect(() => MultiHeadAttention.fromSafetensors(fusedBad, { embedDim: 8, numHeads: 2 })).toThrow(expect.objectContaining({ name: 'ShapeError', dimension: 'in_proj_weight' }));
    // Only an output bias: the module has a bias; a config that says otherwise is refused.
    const oBiasOnly = hf({ 'o_proj.bias': nd(randn([8], 3)) });
    expect(GroupedQueryAttention.fromSafetensors(oBiasOnly, cfg).config.bias).toBe(true);
    expect(GroupedQueryAttention.fromSafetensors(hf({}), cfg).config.bias).toBe(false);
    expect(() => GroupedQueryAttention.fromSafetensors(hf({}), { ...cfg, bias: true })).toThrow(expect.objectContaining({ argument: 'bias' }));
    expect(() => GroupedQueryAttention.fromSafetensors(oBiasOnly, { ...cfg, bias: false })).toThrow(expect.objectContaining({ argument: 'bias' }));
    expect(GroupedQueryAttention.init({ ...cfg, bias: false }).config.bias).toBe(false);
  });
});
