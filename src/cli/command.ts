/**
 * CLI command contract: argv → public API only. A command parses its own flags (node:util parseArgs),
 * prints human output by default and JSON with --json, and throws typed errors; main.ts turns any
 * error into a one-line message and a non-zero exit code.
 */
export interface Command {
  /** One line for the command list. */
  summary: string;
  /** Usage text shown by `vlm-attention <command> --help`. */
  usage: string;
  /**
   * Library argument names that a flag of another name sets (`seqLenQ` → `seq`): an error naming one of them,
   * when that flag was given, is a usage error (exit 2) and names the flag. Others map to kebab case (`headDim` →
   * `head-dim`); a dotted path (`attention.window`) maps by its last part.
   */
  flags?: Readonly<Record<string, string>>;
  run(argv: string[]): Promise<number | void>;
}

/** The flag (without `--`) that sets library argument `arg`, per `flags` or kebab case (see Command.flags). */
export function flagFor(arg: string, flags: Readonly<Record<string, string>> = {}): string {
  const last = arg.replace(/^--/, '').split('.').pop()!;
  return Object.prototype.hasOwnProperty.call(flags, last) ? flags[last]! : last.replace(/[A-Z]/g, (m) => `-${m.toLowerCase()}`);
}

/**
 * A number from a flag's text: decimal or scientific only. Number() alone reads '' and '  ' as 0 and '0x10' as 16,
 * so `--seq ""` ran an empty call; those give NaN here, which the commands and the library report by name.
 */
export function cliNumber(v: string | boolean | undefined): number {
  if (typeof v !== 'string') return Number(v);
  const t = v.trim();
  return /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(t) || /^[+-]?Infinity$/.test(t) ? Number(t) : Number.NaN;
}

/** A usage problem in the command line itself (exit code 2). */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** Progress for long steps: a single updating line on a TTY, plain lines otherwise; silent with --json. */
export function progress(enabled: boolean): (label: string, fraction?: number) => void {
  if (!enabled) return () => undefined;
  const tty = typeof process !== 'undefined' && process.stderr.isTTY;
  return (label, fraction) => {
    const pct = fraction === undefined ? '' : ` ${(fraction * 100).toFixed(0)}%`;
    if (tty) process.stderr.write(`\r\x1b[K${label}${pct}`);
    else if (fraction === undefined || fraction >= 1) process.stderr.write(`${label}${pct}\n`);
    if (tty && fraction !== undefined && fraction >= 1) process.stderr.write('\n');
  };
}

/** The flags among `names` that appear on the command line (`--name` or `--name=…`; `--no-x` for boolean `no-x`). */
export function flagsGiven(argv: readonly string[], names: readonly string[]): string[] {
  return names.filter((n) => argv.some((a) => a === `--${n}` || a.startsWith(`--${n}=`)));
}

/**
 * Refuses flags that do nothing in the chosen mode (a flag silently ignored reads as accepted): UsageError
 * naming them and the mode.
 */
export function refuseFlags(argv: readonly string[], names: readonly string[], mode: string): void {
  const given = flagsGiven(argv, names);
  if (given.length) throw new UsageError(`${given.map((n) => `--${n}`).join(', ')} ${given.length > 1 ? 'do' : 'does'} nothing ${mode}`);
}
