/**
 * Encoder / LLM FLOPs from small configs, and end-to-end budget savings.
 */
import { describe, expect, it } from 'vitest';
import {
  ENCODERS, LLMS, ShapeError, ValueError, attentionCost, budgetSavings, encoderFlops, kvCacheSize, llmFlops, visualTokens,
} from '../../../src/index.js';

describe('encoder FLOPs', () => {
  it('a tiny ViT by hand: QKV+out 8·N·d², MLP 4·N·d·m, patch embed, projector, attention from the kernel model', () => {
    const enc = { name: 'tiny', numLayers: 2, hiddenSize: 8, numHeads: 2, intermediateSize: 16, patchSize: 2, patchChannels: 3, projector: [[8, 4]] as [number, number][] };
    const f = encoderFlops({ encoder: enc, seqLen: 5, passes: 3, outputTokens: 15, dtype: 'f32' });
    expect(f.projections).toBe(2 * 2 * 15 * 8 * 32);
    expect(f.mlp).toBe(2 * 2 * 15 * 8 * 16 * 2);
    expect(f.embedOrHead).toBe(2 * 15 * 3 * 2 * 2 * 8);
    expect(f.projector).toBe(2 * 15 * 8 * 4);
    const att = attentionCost({ batch: 3, seqLenQ: 5, numHeads: 2, headDim: 4, dtype: 'f32' });
    expect(att.flops.qk).toBe(2 * 4 * 2 * 3 * 25);
    expect(f.attention).toBe(2 * att.flops.total);
    expect(f.total).toBe(f.projections + f.mlp + f.embedOrHead + f.projector + f.attention);
  });

  it('CLIP ViT-L/14 @336: ≈190.7 G multiply-adds per image, as open_clip\'s profile (fvcore) lists', () => {
    const t = visualTokens('clip-vit-l14-336');
    const f = encoderFlops({ encoder: 'clip-vit-l14', seqLen: t.encoderSeqLen, outputTokens: t.llmTokens });
    const macs = (f.total - f.projector - (f.attention - attentionCost({ seqLenQ: 577, numHeads: 16, headDim: 64 }).flops.matmul * 24)) / 2;
    expect(macs / 1e9).toBeGreaterThan(190.7 * 0.99);
    expect(macs / 1e9).toBeLessThan(190.7 * 1.01);
    expect(f.attentionShare).toBeGreaterThan(0.05);
    expect(f.attentionShare).toBeLessThan(0.15);
  });
});

describe('LLM FLOPs', () => {
  it('projections + MLP per token = 2 × non-embedding parameters (counted from the config)', () => {
    for (const c of Object.values(LLMS)) {
      const params = c.numLayers * (c.hiddenSize * c.headDim * (2 * c.numHeads + 2 * c.numKvHeads) + 3 * c.hiddenSize * c.intermediateSize);
      const f = llmFlops({ llm: c.name, newTokens: 7 });
      expect(f.projections + f.mlp, c.name).toBe(2 * params * 7);
      expect(f.embedOrHead).toBe(2 * c.hiddenSize * c.vocabSize);
    }
    // Vicuna-7B: 6.48 B non-embedding parameters → 12.95 GFLOPs per token.
    const v = llmFlops({ llm: 'vicuna-7b', newTokens: 1 });
    expect((v.projections + v.mlp) / 1e9).toBeCloseTo(12.95, 2);
  });

  it('attention: causal prefill over new tokens, a decode step over the whole cache', () => {
    const c = LLMS['qwen2-vl-7b']!;
    const pre = llmFlops({ llm: c, newTokens: 1401 });
    expect(pre.attention).toBe(c.numLayers * attentionCost({ seqLenQ: 1401, numHeads: 28, numKvHeads: 4, headDim: 128, causal: true }).flops.total);
    const step = llmFlops({ llm: c, newTokens: 1, pastTokens: 1401 });
    const a = attentionCost({ seqLenQ: 1, seqLenK: 1402, numHeads: 28, numKvHeads: 4, headDim: 128, causal: true });
    expect(a.flops.qk).toBe(2 * 128 * 28 * 1402);
    expect(step.attention).toBe(28 * a.flops.total);
    expect(pre.perLayer.attention * 28).toBe(pre.attention);
  });

  it('bad configs: unknown names list the known ones; heads not divisible; non-integer dims', () => {
    expect(() => llmFlops({ llm: 'gpt-5', newTokens: 1 })).toThrow(/vicuna-7b/);
    expect(() => llmFlops({ llm: { ...LLMS['vicuna-7b']!, numKvHeads: 5 }, newTokens: 1 })).toThrow(ShapeError);
    expect(() => llmFlops({ llm: { ...LLMS['vicuna-7b']!, numLayers: 2.5 }, newTokens: 1 })).toThrow(/llm.numLayers/);
    expect(() => encoderFlops({ encoder: { ...ENCODERS['clip-vit-l14']!, numHeads: 7 }, seqLen: 5 })).toThrow(ValueError);
    expect(() => encoderFlops({ encoder: 'clip-vit-l14', seqLen: -1 })).toThrow(/seqLen/);
    // A config without a projector (as JSON may give it) has none; a malformed one is a typed error.
    const { projector: _, ...bare } = ENCODERS['clip-vit-l14']!;
    expect(encoderFlops({ encoder: bare as typeof ENCODERS[string] & object, seqLen: 5 }).projector).toBe(0);
    expect(() => encoderFlops({ encoder: { ...bare, projector: 3 } as never, seqLen: 5 })).toThrow(ValueError);
    expect(() => llmFlops({ llm: 'vicuna-7b', newTokens: 1, extra: 1 } as never)).toThrow(/unknown key 'extra'/);
  });
});

describe('budget savings', () => {
  it('Qwen2-VL-7B, 1024² image (1,369 tokens) with a 400-token budget: attention, LLM FLOPs and KV saved', () => {
    const s = budgetSavings({ model: 'qwen2-vl-7b', image: { width: 1024, height: 1024 }, budget: 400, textTokens: 32, generatedTokens: 128 });
    expect(s.baseline.visualTokens).toBe(1369);
    expect(s.withBudget.visualTokens).toBe(400);
    const att = (n: number) => llmFlops({ llm: 'qwen2-vl-7b', newTokens: n });
    expect(s.baseline.attentionFlops).toBe(att(1401).attention);
    expect(s.withBudget.attentionFlops).toBe(att(432).attention);
    expect(s.saved.llmFlops).toBe(att(1401).total - att(432).total);
    const perToken = kvCacheSize({ numLayers: 28, numKvHeads: 4, headDim: 128, seqLen: 1 }).totalBytes;
    expect(s.saved.kvBytes).toBe(969 * perToken);
    expect(s.baseline.kvBytes).toBe((1401 + 128) * perToken);
    expect(s.baseline.decodeStepKvBytes).toBe((1401 + 127) * perToken);
    // Quadratic attention shrinks faster than the linear parts.
    expect(s.ratio.attentionFlops).toBeLessThan(s.ratio.llmFlops);
    expect(s.ratio.attentionFlops).toBeGreaterThan((432 / 1401) ** 2 * 0.9);
    expect(s.encoderFlops).toBeGreaterThan(0);
  });

  it('the seed\'s ARR-COC budget on LLaVA-1.5 (576 native tokens): 1,600 tokens cost more, reported as negative savings', () => {
    const s = budgetSavings({ model: 'llava-1.5-7b', budget: 1600, textTokens: 512 });
    expect(s.saved.visualTokens).toBe(576 - 1600);
    expect(s.saved.kvBytes).toBeLessThan(0);
    expect(s.withBudget.kvBytes).toBe(kvCacheSize({ numLayers: 32, numKvHeads: 32, headDim: 128, seqLen: 2112 }).totalBytes);
  });

  it('monotone in the budget; equal budget saves nothing', () => {
    const img = { width: 1000, height: 1000 };
    const native = visualTokens('internvl', img).llmTokens;
    expect(budgetSavings({ model: 'internvl2-8b', image: img, budget: native }).saved).toEqual({ visualTokens: 0, attentionFlops: 0, llmFlops: 0, kvBytes: 0, decodeStepKvBytes: 0 });
    let prev = -Infinity;
    for (const b of [2048, 1024, 512, 256, 64]) {
      const s = budgetSavings({ model: 'internvl2-8b', image: img, budget: b });
      expect(s.saved.attentionFlops).toBeGreaterThan(prev);
      prev = s.saved.attentionFlops;
    }
  });

  it('bad input', () => {
    expect(() => budgetSavings({ model: 'qwen2-vl-7b', budget: 400 })).toThrow(/needs image/);
    expect(() => budgetSavings({ model: 'qwen9', budget: 400 })).toThrow(/llava-1.5-7b/);
    expect(() => budgetSavings({ model: 'llava-1.5-7b', budget: -4 })).toThrow(ShapeError);
    expect(() => budgetSavings({ model: 'llava-1.5-7b', budget: 10.5 })).toThrow(/budget/);
    expect(() => budgetSavings({ model: 'llava-1.5-7b', budget: 400, kvDtype: 'fp8' as never })).toThrow(expect.objectContaining({ name: 'DTypeError', argument: 'kvDtype' }));
    expect(() => budgetSavings({ model: 'llava-1.5-7b', budget: 400, dtype: 'int8' as never })).toThrow(expect.objectContaining({ name: 'DTypeError', argument: 'dtype' }));
    expect(budgetSavings({ model: 'llava-1.5-7b', budget: 400, kvDtype: 'int8' }).withBudget.kvBytes).toBeGreaterThan(0);
  });
});
