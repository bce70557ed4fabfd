/**
 * The seed note's cost examples, computed correctly (../shared/seed/README.md lists its errors).
 * Decimal units: 1 MB = 10^6 bytes, 1 GB = 10^9 bytes, 1 GFLOP = 10^9 FLOPs.
 */
import { describe, expect, it } from 'vitest';
import { attentionCost, formatBytesSI, formatFlopsSI, kvCacheSize, planAttentionShape } from '../../../src/index.js';
import { nominalFlops } from '../../../src/attention/plan.js';

describe('seed examples, corrected', () => {
  it('4·N²·d for N = 5,329 and d = 3,584 is 407.1 GFLOPs (the seed says TFLOPs)', () => {
    // d = 3,584 is the model width: 28 heads × 128 (Qwen2-VL-7B's LLM).
    const a = attentionCost({ seqLenQ: 5329, numHeads: 28, headDim: 128 });
    expect(a.flops.nominal).toBe(4 * 5329 * 5329 * 3584);
    expect(a.flops.nominal).toBe(407_117_182_976);
    expect(formatFlopsSI(a.flops.nominal)).toBe('407.1 GFLOP');
    // The nominal count is the core's nominalFlops(plan), not a second formula.
    expect(a.flops.nominalDense).toBe(nominalFlops(planAttentionShape({ seqLenQ: 5329, numHeads: 28, headDim: 128 })));
    // The counted QKᵀ + PV equal the nominal count when nothing is masked.
    expect(a.flops.qk + a.flops.pv).toBe(a.flops.nominal);
    // 32 such layers: 13.03 TFLOPs (the seed says 13,024 TFLOPs).
    expect(formatFlopsSI(32 * a.flops.nominal)).toBe('13.03 TFLOP');
  });

  it('LLaVA KV cache: 12.58 MB per layer, 402.7 MB for 32 layers (B1, 32 heads, 768 tokens, d128, fp16)', () => {
    const one = kvCacheSize({ numLayers: 1, numKvHeads: 32, seqLen: 768, headDim: 128, dtype: 'f16' });
    expect(one.totalBytes).toBe(2 * 32 * 768 * 128 * 2);
    expect(formatBytesSI(one.totalBytes)).toBe('12.58 MB');
    const all = kvCacheSize({ numLayers: 32, numKvHeads: 32, seqLen: 768, headDim: 128, dtype: 'f16' });
    expect(all.perLayerBytes).toBe(one.totalBytes);
    expect(all.totalBytes).toBe(402_653_184);
    expect(formatBytesSI(all.totalBytes)).toBe('402.7 MB');
  });

  it('MHA/GQA deployment (2,112 tokens, 32 layers, 32 heads, d128, fp16): 1.107 GB MHA, 276.8 MB GQA-8', () => {
    const mha = kvCacheSize({ numLayers: 32, numHeads: 32, numKvHeads: 32, seqLen: 2112, headDim: 128 });
    const gqa = kvCacheSize({ numLayers: 32, numHeads: 32, numKvHeads: 8, seqLen: 2112, headDim: 128 });
    expect(mha.totalBytes).toBe(1_107_296_256);
    expect(formatBytesSI(mha.totalBytes)).toBe('1.107 GB');
    expect(gqa.totalBytes).toBe(276_824_064);
    expect(formatBytesSI(gqa.totalBytes)).toBe('276.8 MB');
    const mqa = kvCacheSize({ numLayers: 32, numHeads: 32, numKvHeads: 1, seqLen: 2112, headDim: 128 });
    expect(mqa.totalBytes * 32).toBe(mha.totalBytes);
  });

  it('the seed\'s batch-4 GQA example is 402.7 MB, not 100.7 MB', () => {
    const kv = kvCacheSize({ batch: 4, numLayers: 32, numKvHeads: 8, seqLen: 768, headDim: 128 });
    expect(kv.totalBytes).toBe(2 * 4 * 32 * 8 * 768 * 128 * 2);
    expect(formatBytesSI(kv.totalBytes)).toBe('402.7 MB');
  });
});
