#!/usr/bin/env node
/**
 * vlm-attention command line: `vlm-attention <command> [flags]`. Errors become one line on stderr
 * and a non-zero exit code (2 for usage errors, 1 otherwise).
 */
import { COMMANDS } from './commands/index.js';
import { UsageError, flagFor, flagsGiven } from './command.js';

function help(): string {
  const names = Object.keys(COMMANDS).sort();
  return `vlm-attention: fast, inspectable attention for vision-language models\n\nUsage: vlm-attention <command> [flags]   (vlm-attention <command> --help; vlm-attention --version)\n\nCommands:\n${names.map((n) => `  ${n}`).join('\n')}\n`;
}

/**
 * `--flag -1` as `--flag=-1`: node's parseArgs takes a value that starts with '-' for another option and refuses it as
 * ambiguous, so a negative number (`--offset -3`, say) could not be given with a space.
 */
function joinNegativeValues(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!, next = argv[i + 1];
    if (/^--[^=]+$/.test(a) && next !== undefined && /^-(\d|\.\d|Infinity\b)/.test(next)) { out.push(`${a}=${next}`); i++; } else out.push(a);
  }
  return out;
}

/** The installed package's version (package.json beside dist/). */
async function packageVersion(): Promise<string> {
  const { readFile } = await import('node:fs/promises');
  const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = joinNegativeValues(argv);
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    const lines: string[] = [];
    for (const n of Object.keys(COMMANDS).sort()) lines.push(`  ${n.padEnd(12)} ${(await COMMANDS[n]!()).summary}`);
    process.stdout.write(help().replace(/Commands:\n[\s\S]*$/, `Commands:\n${lines.join('\n')}\n`));
    return name ? 0 : 2;
  }
  if (name === '--version' || name === '-v' || name === 'version') {
    process.stdout.write(`vlm-attention ${await packageVersion()}\n`);
    return 0;
  }
  const load = COMMANDS[name];
  if (!load) {
    process.stderr.write(`vlm-attention: unknown command '${name}' (commands: ${Object.keys(COMMANDS).sort().join(', ')})\n`);
    return 2;
  }
  const cmd = await load();
  if (rest.includes('--help') || rest.includes('-h')) { process.stdout.write(cmd.usage + '\n'); return 0; }
  try {
    const code = await cmd.run(rest);
    return typeof code === 'number' ? code : 0;
  } catch (e) {
    const err = e as Error;
    // A library error about an argument that a flag of this command sets (`budget` ↔ --budget; a ShapeError's dimension,
    // `headDim` ↔ --head-dim, when its argument is a tensor) is a usage problem too: exit 2, as for the command's own
    // checks, naming the flag. A flag the user gave wins; else one the usage lists (its default, or a missing one).
    const named = [(err as { argument?: unknown }).argument, (err as { dimension?: unknown }).dimension].filter((a): a is string => typeof a === 'string');
    const candidates = named.map((a) => flagFor(a, cmd.flags));
    const known = new Set([...cmd.usage.matchAll(/--([a-z][a-z0-9-]*)/g)].map((m) => m[1]!));
    const flag = candidates.find((f) => flagsGiven(rest, [f]).length > 0) ?? candidates.find((f) => known.has(f)) ?? null;
    const fromFlag = flag !== null;
    const isUsage = err instanceof UsageError || (err as { code?: string }).code?.startsWith?.('ERR_PARSE_ARGS') || fromFlag;
    // parseArgs's own errors are TypeErrors: name them for what they are, a usage problem.
    const kind = isUsage && !fromFlag ? 'UsageError' : err.name;
    const line = err.message.split('\n')[0]!;
    // The library names its own argument (seqLenQ): say which flag set it when the message does not.
    const hint = fromFlag && !line.includes(`--${flag}`) ? ` (--${flag})` : '';
    process.stderr.write(`vlm-attention ${name}: ${kind}: ${line}${hint}\n`);
    if (process.env.VLM_ATTENTION_DEBUG) process.stderr.write(`${err.stack}\n`);
    return isUsage ? 2 : 1;
  }
}

const code = await main(process.argv.slice(2));
process.exitCode = code;
