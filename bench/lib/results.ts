/**
 * JSON results under bench/results/ (or a path given with --out). Every file carries the command
 * that produced it and the machine, so a number never travels without its context.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { MachineInfo } from './machine.js';

export interface ResultFile<T> {
  bench: string;
  /** The command line that produced the file. */
  command: string;
  machine: MachineInfo;
  /** How timings are summarised, e.g. "median of N timed runs after warm-up". */
  method: string;
  results: T;
}

/** The results directory: bench/results under the current working directory (the repo root). */
export function resultsDir(): string {
  return resolve(process.cwd(), 'bench', 'results');
}

/** Writes JSON (pretty, stable key order as given); returns the absolute path. */
export function writeJson(path: string, data: unknown): string {
  const abs = resolve(path);
  mkdirSync(dirname(abs), { recursive: true });
  writeFileSync(abs, JSON.stringify(data, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v), 2) + '\n');
  return abs;
}

/** Writes bench/results/<name>.json unless `out` names another path. */
export function writeResults<T>(name: string, file: ResultFile<T>, out?: string): string {
  return writeJson(out ?? join(resultsDir(), `${name}.json`), file);
}
