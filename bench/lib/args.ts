/**
 * A small argv parser for the benchmarks: `--flag`, `--key=value`, `--key value`. Unknown flags are
 * an error, so a typo cannot silently run the default benchmark.
 */

export interface ArgSpec {
  /** Flag name without dashes → description (for --help). Flags taking a value end in '=': 'runs='. */
  [flag: string]: string;
}

export interface ParsedArgs {
  flags: Set<string>;
  values: Map<string, string>;
}

export function parseArgs(argv: readonly string[], spec: ArgSpec, usage: string): ParsedArgs {
  const flags = new Set<string>(), values = new Map<string, string>();
  const takesValue = (k: string) => Object.prototype.hasOwnProperty.call(spec, `${k}=`);
  const isFlag = (k: string) => Object.prototype.hasOwnProperty.call(spec, k);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--help' || a === '-h') {
      console.log(usage + '\n\nOptions:\n' + Object.entries(spec).map(([k, d]) => `  --${k.endsWith('=') ? k + '…' : k}  ${d}`).join('\n'));
      process.exit(0);
    }
    if (!a.startsWith('--')) throw new Error(`bench: unexpected argument ${JSON.stringify(a)} (see --help)`);
    const eq = a.indexOf('=');
    const key = eq > 0 ? a.slice(2, eq) : a.slice(2);
    if (takesValue(key)) {
      const v = eq > 0 ? a.slice(eq + 1) : argv[++i];
      if (v === undefined) throw new Error(`bench: --${key} needs a value`);
      values.set(key, v);
    } else if (isFlag(key) && eq < 0) {
      flags.add(key);
    } else {
      throw new Error(`bench: unknown option --${key} (see --help)`);
    }
  }
  return { flags, values };
}

/** A positive integer option, or the default. */
export function intOption(args: ParsedArgs, key: string, dflt: number): number {
  const v = args.values.get(key);
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`bench: --${key} must be a non-negative integer, got ${v}`);
  return n;
}
