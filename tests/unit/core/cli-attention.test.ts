/**
 * `vlm-attention attention`: one call on random inputs, timing and kernel statistics; flags checked.
 */
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../../src/cli/command.js';
import { runCommand } from '../../helpers/cli.js';

const run = async (argv: string[]): Promise<string> => (await runCommand('attention', argv)).out;

describe('vlm-attention attention', () => {
  it('runs a small GQA call on the CPU and reports the shape, time and kernel', async () => {
    const out = JSON.parse(await run(['--batch', '1', '--heads', '4', '--kv-heads', '2', '--seq', '97', '--head-dim', '40', '--causal', '--backend', 'wasm', '--json']));
    expect(out.shape).toEqual({ B: 1, H: 4, Hk: 2, N: 97, Nk: 97, D: 40 });
    expect(out.mask).toMatch(/causal/);
    expect(out.ms).toBeGreaterThan(0);
    expect(out.cpu.threads).toBeGreaterThan(0);
  }, 60_000);
  it('--window means what cost attention --window means: L keys back; after the query only with --causal off', async () => {
    const win = JSON.parse(await run(['--seq', '200', '--heads', '2', '--head-dim', '16', '--window', '64', '--backend', 'wasm', '--json']));
    expect(win.mask).toBe('window(64,∞)');
    const cost = JSON.parse((await runCommand('cost', ['attention', '--seq', '200', '--heads', '2', '--head-dim', '16', '--window', '64', '--dtype', 'f32', '--json'])).out);
    expect(win.kernel.visitedTiles).toBe(Number(JSON.stringify(cost).match(/"visitedTiles":\s*(\d+)/)![1]));
    const causalWin = JSON.parse(await run(['--seq', '200', '--heads', '2', '--head-dim', '16', '--window', '64', '--causal', '--backend', 'wasm', '--json']));
    expect(causalWin.mask).toBe('window(64,0)');
  }, 60_000);
  it('sizes past what a typed array holds are a UsageError naming the flags, not a RangeError', async () => {
    await expect(run(['--seq', '99999999999999999999', '--heads', '1', '--head-dim', '1'])).rejects.toThrow(/--seq/);
    await expect(run(['--batch', '1000', '--seq', '4096', '--heads', '64', '--head-dim', '256'])).rejects.toThrow(UsageError);
  });
  it('--no-robustness applies to the WebGPU backend only (UsageError naming it)', async () => {
    await expect(run(['--backend', 'wasm', '--no-robustness'])).rejects.toThrow(UsageError);
    await expect(run(['--backend', 'wasm', '--no-robustness'])).rejects.toThrow(/--backend webgpu/);
  });
  it('rejects a negative size, and numbers that are not decimal ("" once ran an empty call, 0x10 a 16)', async () => {
    await expect(run(['--seq=-3'])).rejects.toThrow(UsageError);
    await expect(run(['--seq='])).rejects.toThrow(UsageError);
    await expect(run(['--seq', '0x10'])).rejects.toThrow(UsageError);
  });
});
