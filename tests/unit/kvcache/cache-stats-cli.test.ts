import { afterEach, describe, expect, it, vi } from 'vitest';
import command from '../../../src/cli/commands/cache-stats.js';
import { COMMANDS } from '../../../src/cli/commands/index.js';
import { UsageError, flagFor } from '../../../src/cli/command.js';

function capture() {
  const out: string[] = [];
  vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => { out.push(a.join(' ')); });
  vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  return out;
}

describe('vlm-attention cache-stats', () => {
  afterEach(() => vi.restoreAllMocks());

  it('is registered', async () => {
    expect(await COMMANDS['cache-stats']!()).toBe(command);
  });

  it('runs the default serving workload and prints pool statistics', async () => {
    const out = capture();
    await command.run(['--requests', '40', '--blocks', '600']);
    const text = out.join('\n');
    expect(text).toMatch(/KV cache: 28 layers × 4 KV heads × headDim 128, f16/);
    expect(text).toMatch(/MHA\s+28 KV heads/);
    expect(text).toMatch(/GQA\s+4 KV heads/);
    expect(text).toMatch(/MQA\s+1 KV heads/);
    expect(text).toMatch(/utilisation/);
    expect(text).toMatch(/fragmentation/);
    expect(text).toMatch(/prefix cache\s+\d+\.\d+ % hit rate/);
    expect(text).toMatch(/Serving: 40 requests/);
    // The run's peak concurrency is its own line, not a caption of the peak-utilisation snapshot.
    expect(text).toMatch(/at most \d+ samples ran at once\nAt peak utilisation:\n/);
  });

  it('image-prefix takes --images and --prompts; a flag a workload has no use for is refused, not ignored', async () => {
    const out = capture();
    await command.run(['--workload', 'image-prefix', '--images', '3', '--prompts', '2', '--json']);
    const j = JSON.parse(out.join('\n'));
    expect(j.reports.map((r: { requests: number }) => r.requests)).toEqual([6, 6]);
    await expect(command.run(['--workload', 'image-prefix', '--requests', '5'])).rejects.toThrow(/--requests does not apply to --workload image-prefix/);
    await expect(command.run(['--workload', 'waste', '--images', '5'])).rejects.toThrow(UsageError);
    await expect(command.run(['--prompts', '5'])).rejects.toThrow(/--prompts does not apply to --workload serving/);
    // waste uses --block-size and --seed only: the model and pool flags are refused too.
    await expect(command.run(['--workload', 'waste', '--image-tokens', '5', '--dtype', 'int8', '--layers', '2'])).rejects.toThrow(/--layers, --dtype, --image-tokens do nothing with --workload waste/);
    await expect(command.run(['--workload', 'nope'])).rejects.toThrow(/--workload must be/);
  });

  it('--json gives the report as JSON (image-prefix workload)', async () => {
    const out = capture();
    await command.run(['--workload', 'image-prefix', '--json']);
    const j = JSON.parse(out.join('\n'));
    expect(j.workload).toBe('image-prefix');
    expect(j.reports[0].order).toBe('image-first');
    expect(j.reports[0].imageBlocksReused).toBe(j.reports[0].imageBlocksAfterFirst);
    expect(j.variants.map((v: { variant: string }) => v.variant)).toEqual(['MHA', 'GQA', 'MQA']);
  });

  it('waste workload and --memory sizing', async () => {
    const out = capture();
    await command.run(['--workload', 'waste']);
    expect(out.join('\n')).toMatch(/paged \(blocks of 16\)\s+0\.\d+ % unused/);
    const out2 = capture();
    await command.run(['--memory', '1GB', '--requests', '10', '--json']);
    const j = JSON.parse(out2.join('\n'));
    expect(j.plan.numBlocks).toBe(Math.floor(1e9 / j.plan.bytesPerBlock));
  });

  it('library range errors name arguments that map to the flags that set them (the CLI exits 2 naming the flag)', async () => {
    capture();
    for (const [argv, flag] of [[['--memory', '1kB'], 'memory'], [['--blocks', '99999999999'], 'blocks']] as const) {
      const e = await command.run([...argv]).then(() => null, (x: unknown) => x as { argument?: string; dimension?: string });
      expect(e, argv.join(' ')).not.toBeNull();
      const named = [e!.argument, e!.dimension].filter((a): a is string => typeof a === 'string').map((a) => flagFor(a, command.flags));
      expect(named, argv.join(' ')).toContain(flag);
    }
  });

  it('the text says when the serving simulation stopped before every request finished, and which pool image-prefix used', async () => {
    const out = capture();
    await command.run(['--requests', '40', '--blocks', '700', '--image-tokens', '64']);
    const text = out.join('\n');
    const m = /Serving: (\d+ of \d+|\d+) requests/.exec(text);
    expect(m).not.toBeNull();
    if (m![1]!.includes('of')) expect(text).toMatch(/stopped at its step limit/);
    const out2 = capture();
    await command.run(['--workload', 'image-prefix', '--images', '2', '--prompts', '2']);
    const t2 = out2.join('\n');
    expect(t2).not.toMatch(/pool 2048 blocks/);
    expect(t2).toMatch(/image-prefix runs on a pool of \d+ blocks = /);
  });

  it('rejects bad flags with usage errors', async () => {
    capture();
    await expect(command.run(['--dtype', 'bf16'])).rejects.toThrow(UsageError);
    await expect(command.run(['--heads', '6', '--kv-heads', '4'])).rejects.toThrow(/multiple/);
    await expect(command.run(['--workload', 'nope'])).rejects.toThrow(/--workload/);
    await expect(command.run(['--blocks', '10', '--memory', '1GB'])).rejects.toThrow(/not both/);
    // A pool too small for one request: a usage error naming the flags (it was a raw OutOfBlocksError, exit 1).
    await expect(command.run(['--blocks', '10'])).rejects.toThrow(expect.objectContaining({ name: 'UsageError', message: expect.stringMatching(/pool of 10 blocks cannot hold .* --blocks or --memory/) }));
    await expect(command.run(['--workload', 'image-prefix', '--blocks', '10'])).rejects.toThrow(UsageError);
  });
});
