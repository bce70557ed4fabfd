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

/** One row of a comparison against an earlier result file (a regression check between runs). */
export interface BaselineRow {
  /** `shape/variant`, e.g. `decode-kv4k/f16`. */
  name: string;
  beforeMs: number;
  nowMs: number;
  /** nowMs / beforeMs: above 1 is slower. */
  ratio: number;
  /** 'slower' / 'faster' past the tolerance, else 'same'. */
  verdict: 'slower' | 'faster' | 'same';
}

/** The relative change compareToBaseline takes as run-to-run spread (H200 reruns of one source differ by up to ~5%). */
export const BASELINE_TOLERANCE = 0.1;

/**
 * Rows of this run against an earlier run's rows, matched by shape and variant (rows missing from
 * either side, or without a finite time, are left out). `tolerance` is the relative change taken as
 * run-to-run spread.
 */
export function compareToBaseline(now: readonly { shape: string; variant: string; ms: number }[], before: readonly { shape: string; variant: string; ms: number | string }[], tolerance = BASELINE_TOLERANCE): BaselineRow[] {
  const old = new Map(before.map((r) => [`${r.shape}/${r.variant}`, Number(r.ms)]));
  const rows: BaselineRow[] = [];
  for (const r of now) {
    const name = `${r.shape}/${r.variant}`, beforeMs = old.get(name);
    if (beforeMs === undefined || !Number.isFinite(beforeMs) || !(beforeMs > 0) || !Number.isFinite(r.ms)) continue;
    const ratio = r.ms / beforeMs;
    rows.push({ name, beforeMs, nowMs: r.ms, ratio, verdict: ratio > 1 + tolerance ? 'slower' : ratio < 1 / (1 + tolerance) ? 'faster' : 'same' });
  }
  return rows;
}
