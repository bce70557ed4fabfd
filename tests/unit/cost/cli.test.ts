/**
 * `vlm-attention cost`: flags, JSON/YAML config files, --json output, typed errors.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UsageError } from '../../../src/cli/command.js';
import { BENCH_SCHEMA, FormatError, ShapeError, ValueError, attentionCost, attentionRoofline, runCostConfig } from '../../../src/index.js';
import { runCommand } from '../../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'vlm-cost-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const run = (argv: string[]): Promise<{ code: number | void; out: string }> => runCommand('cost', argv);

describe('vlm-attention cost', () => {
  it('attention from flags: table and --json agree with the API', async () => {
    const argv = ['attention', '--batch', '2', '--seq', '301', '--heads', '8', '--kv-heads', '2', '--head-dim', '72', '--causal', '--device', 'h200,a100'];
    const t = await run(argv);
    expect(t.out).toContain('mask=causal');
    expect(t.out).toMatch(/h200 +flash +tensor .* (compute|memory)/);
    const j = JSON.parse((await run([...argv, '--json'])).out);
    const cost = attentionCost({ batch: 2, seqLenQ: 301, numHeads: 8, numKvHeads: 2, headDim: 72, causal: true });
    expect(j.attention.cost.flops).toEqual(cost.flops);
    expect(j.attention.roofline.map((r: { device: string }) => r.device)).toEqual(['h200', 'a100']);
    expect(j.attention.roofline[1].seconds).toBe(attentionRoofline(cost, 'a100').seconds);
  });

  it('kv, tokens and budget sections', async () => {
    const kv = JSON.parse((await run(['kv', '--layers', '32', '--kv-heads', '8', '--head-dim', '128', '--seq', '2112', '--memory', '80GB', '--json'])).out);
    expect(kv.kv.size.totalBytes).toBe(276_824_064);
    expect(kv.kv.maxBatch.batch).toBe(Math.floor(80e9 / 276_824_064));
    const tok = await run(['tokens', '--tokenizer', 'qwen2-vl', '--image', '1024x1024']);
    expect(tok.out).toContain('1369 LLM tokens');
    const b = JSON.parse((await run(['budget', '--model', 'qwen2-vl-7b', '--image', '1024x1024', '--budget', '400', '--json'])).out);
    expect(b.budget.saved.visualTokens).toBe(969);
  });

  it('YAML and JSON config files give the same report as the API', async () => {
    const yamlPath = join(dir, 'calc.yaml');
    writeFileSync(yamlPath, [
      'devices: [h200-webgpu, l4]',
      'attention:',
      '  seqLenQ: 1025',
      '  numHeads: 16',
      '  headDim: 80',
      '  window: 256',
      '  causal: true',
      '  tiling: { tileQ: 32, tileK: 64 }',
      'kv: { numLayers: 28, numKvHeads: 4, headDim: 128, seqLen: 1401, batch: 3, blockSizeTokens: 16, sharedPrefixTokens: 1369 }',
      'tokens: { tokenizer: internvl, image: { width: 1920, height: 1080 }, options: { maxTiles: 6 } }',
    ].join('\n'));
    const j = JSON.parse((await run(['--config', yamlPath, '--json'])).out);
    const api = runCostConfig({
      devices: ['h200-webgpu', 'l4'],
      attention: { seqLenQ: 1025, numHeads: 16, headDim: 80, window: 256, causal: true, tiling: { tileQ: 32, tileK: 64 } },
      kv: { numLayers: 28, numKvHeads: 4, headDim: 128, seqLen: 1401, batch: 3, blockSizeTokens: 16, sharedPrefixTokens: 1369 },
      tokens: { tokenizer: 'internvl', image: { width: 1920, height: 1080 }, options: { maxTiles: 6 } },
    });
    expect(j.attention.cost.flops).toEqual(api.attention!.cost.flops);
    expect(j.attention.cost.tiling.tileQ).toBe(32);
    expect(j.kv.size.totalBytes).toBe(api.kv!.size.totalBytes);
    expect(j.tokens.llmTokens).toBe(768);
    const jsonPath = join(dir, 'calc.json');
    writeFileSync(jsonPath, JSON.stringify({ attention: { seqLenQ: 64, numHeads: 2, headDim: 32 } }));
    expect((await run(['--config', jsonPath])).out).toContain('Sq64');
  });

  it('a config file with an unknown key → ValueError naming the key', async () => {
    const p = join(dir, 'bad.yaml');
    writeFileSync(p, 'attention:\n  seqlen: 5\n  numHeads: 2\n  headDim: 8\n');
    await expect(run(['--config', p])).rejects.toThrow(/unknown key 'attention.seqlen'/);
    writeFileSync(p, 'attentoin: {}\n');
    await expect(run(['--config', p])).rejects.toThrow(ValueError);
    await expect(run(['--config', p])).rejects.toThrow(/'attentoin'/);
    writeFileSync(p, 'kv: { numLayers: 2, numKvHeads: 2, headDim: 8, seqLen: 4, blocksize: 16 }\n');
    await expect(run(['--config', p])).rejects.toThrow(/kv.blocksize/);
    writeFileSync(p, 'attention: [1, 2\n');
    await expect(run(['--config', p])).rejects.toThrow(FormatError);
    await expect(run(['--config', join(dir, 'missing.yaml')])).rejects.toThrow(FormatError);
  });

  it('flags a section does not use, extra arguments and empty configs are refused, not ignored', async () => {
    await expect(run(['attention', '--seq', '10', '--heads', '16', '--head-dim', '64', '--layers', '3'])).rejects.toThrow(/--layers does nothing in cost attention/);
    await expect(run(['attention', '--seq', '10', '--heads', '16', '--head-dim', '64', '--tokenizer', 'x', '--measure-cpu'])).rejects.toThrow(/--tokenizer, --measure-cpu do nothing/);
    await expect(run(['attention', 'extra', '--seq', '10', '--heads', '16', '--head-dim', '64'])).rejects.toThrow(/takes no argument "extra"/);
    await expect(run(['kv', '--layers', '2', '--kv-heads', '2', '--head-dim', '8', '--seq', '10', '--causal'])).rejects.toThrow(/--causal does nothing in cost kv/);
    await expect(run(['kv', '--layers', '2', '--kv-heads', '2', '--head-dim', '8', '--seq', '10', '--reserved', '5GB'])).rejects.toThrow(/give --memory too/);
    await expect(run(['kv', '--layers', '2', '--kv-heads', '2', '--head-dim', '8', '--seq', '10', '--memory', '1e400GB'])).rejects.toThrow(expect.objectContaining({ name: 'ValueError', argument: 'memoryBytes' }));
    await expect(run(['tokens', '--tokenizer', 'llava-next', '--image', '672x672', '--max-tiles', '3'])).rejects.toThrow(/--max-tiles applies to --tokenizer internvl/);
    await expect(run(['tokens', '--tokenizer', 'vit'])).rejects.toThrow(/--image-size/);
    expect((await run(['tokens', '--tokenizer', 'vit', '--image-size', '224', '--json'])).out).toMatch(/"llmTokens": 256/);
    const empty = join(dir, 'empty.json');
    writeFileSync(empty, '{}');
    await expect(run(['--config', empty])).rejects.toThrow(/holds no section/);
    await expect(run(['--config', empty, '--seq', '5'])).rejects.toThrow(/--seq does nothing with --config/);
    await expect(run(['bench', 'a.json', 'b.json'])).rejects.toThrow(/takes no argument "b.json"/);
  });

  it('bad dims and devices → typed errors; bad usage → UsageError', async () => {
    await expect(run(['--seq=-5', '--heads', '4', '--head-dim', '64'])).rejects.toThrow(ShapeError);
    await expect(run(['--seq', '5.5', '--heads', '4', '--head-dim', '64'])).rejects.toThrow(/seqLenQ/);
    await expect(run(['--seq', '5', '--heads', '6', '--kv-heads', '4', '--head-dim', '64'])).rejects.toThrow(/divisible/);
    await expect(run(['--seq', '5', '--heads', '4', '--head-dim', '64', '--device', 'tpu'])).rejects.toThrow(/known devices: a100/);
    await expect(run(['frobnicate'])).rejects.toThrow(UsageError);
    await expect(run(['attention', '--heads', '4'])).rejects.toThrow(UsageError);
    await expect(run(['--nope'])).rejects.toThrow(/nope/);
  });

  it('devices lists every profile; bench compares a results file with the predictions', async () => {
    expect((await run(['devices'])).out).toMatch(/h200-webgpu .*550\.0 TFLOP\/s \(ms\)/);
    const shape = { batch: 16, seqLenQ: 1, seqLenK: 4096, numHeads: 32, numKvHeads: 8, headDim: 128, dtype: 'f16' };
    const predicted = attentionRoofline(attentionCost(shape as never, { tiling: { tileQ: 64, tileK: 64 } }), 'h200-webgpu').seconds * 1e3;
    const file = join(dir, 'bench.json');
    writeFileSync(file, JSON.stringify({
      schema: BENCH_SCHEMA, device: 'H200 test', base: 'h200',
      ceilings: { f32: { vector: 65.5e12 }, f16: { vector: 66e12, tensor: 550e12 }, bandwidth: 4.15e12 },
      results: [{ name: 'decode-kv4k', shape, ms: predicted * 1.25 }],
    }));
    const shapes = await run(['shapes', '--set', 'gpu', '--device', 'h200-webgpu']);
    expect(shapes.out).toMatch(/decode-kv4k .* memory/);
    expect(shapes.out).toMatch(/8k-d64 .* compute/);
    const r = await run(['bench', file]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/decode-kv4k .* 1\.25 .* yes .* memory/);
    // The recorded H200 run: leave-one-out predictions within 2× (exit code 0); lower bounds are not.
    const h200 = new URL('../../../bench/results/gpu-h200-profile.json', import.meta.url).pathname;
    const loo = await run(['bench', h200, '--calibrate', 'leave-one-out']);
    expect(loo.code).toBe(0);
    expect(loo.out).toMatch(/vitL14-336\/f16 .* yes .* compute .* 5 other shapes/);
    expect((await run(['bench', h200])).code).toBe(1);
    await expect(run(['bench', h200, '--calibrate', 'median'])).rejects.toThrow(/--calibrate/);
  });
});
