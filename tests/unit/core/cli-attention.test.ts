/**
 * `vlm-attention attention`: one call on random inputs, timing and kernel statistics; flags checked.
 */
import { describe, expect, it, vi } from 'vitest';
import { COMMANDS } from '../../../src/cli/commands/index.js';
import { UsageError } from '../../../src/cli/command.js';

async function run(argv: string[]): Promise<string> {
  const cmd = await COMMANDS.attention!();
  const lines: string[] = [];
  const spy = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => { lines.push(a.join(' ')); });
  try {
    await cmd.run(argv);
    return lines.join('\n');
  } finally {
    spy.mockRestore();
  }
}

describe('vlm-attention attention', () => {
  it('runs a small GQA call on the CPU and reports the shape, time and kernel', async () => {
    const out = JSON.parse(await run(['--batch', '1', '--heads', '4', '--kv-heads', '2', '--seq', '97', '--head-dim', '40', '--causal', '--backend', 'wasm', '--json']));
    expect(out.shape).toEqual({ B: 1, H: 4, Hk: 2, N: 97, Nk: 97, D: 40 });
    expect(out.mask).toMatch(/causal/);
    expect(out.ms).toBeGreaterThan(0);
    expect(out.cpu.threads).toBeGreaterThan(0);
  }, 60_000);
  it('--no-robustness applies to the WebGPU backend only (UsageError naming it)', async () => {
    await expect(run(['--backend', 'wasm', '--no-robustness'])).rejects.toThrow(UsageError);
    await expect(run(['--backend', 'wasm', '--no-robustness'])).rejects.toThrow(/--backend webgpu/);
  });
  it('rejects a negative size', async () => {
    await expect(run(['--seq=-3'])).rejects.toThrow(UsageError);
  });
});
