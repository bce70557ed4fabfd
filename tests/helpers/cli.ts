/**
 * Runs one `vlm-attention` command in-process (from the command registry) with console.log captured:
 * its exit code and everything it printed, one line per call.
 */
import { vi } from 'vitest';
import { COMMANDS } from '../../src/cli/commands/index.js';

export async function runCommand(name: string, argv: string[]): Promise<{ code: number | void; out: string }> {
  const cmd = await COMMANDS[name]!();
  const lines: string[] = [];
  const spy = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => { lines.push(a.join(' ')); });
  try {
    const code = await cmd.run(argv);
    return { code, out: lines.join('\n') };
  } finally {
    spy.mockRestore();
  }
}
