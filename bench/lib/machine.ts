/**
 * The machine a benchmark ran on: every table and JSON file states it.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';

/** Injected by scripts/run-bench.mjs at bundle time. */
declare const __VLM_BENCH_SOURCE__: SourceInfo | undefined;

export interface SourceInfo {
  /** HEAD when the bench was bundled. */
  commit: string | null;
  /** Files under src/, scripts/, bench/ that differed from HEAD (the kernels were mid-edit if > 0). */
  uncommittedFiles: number | null;
  bundledAt: string;
}

/** The source the running bench was bundled from (null when not run through run-bench.mjs). */
export function sourceInfo(): SourceInfo | null {
  return typeof __VLM_BENCH_SOURCE__ !== 'undefined' ? __VLM_BENCH_SOURCE__ : null;
}

export interface MachineInfo {
  cpuModel: string;
  /** Logical cores the OS reports. */
  logicalCores: number;
  availableParallelism: number;
  /** CPU flags of interest (avx2, avx512f, fma), from /proc/cpuinfo where readable. */
  cpuFlags: string[];
  totalMemBytes: number;
  /** MemAvailable at the start (Linux), else os.freemem(). */
  availableMemBytes: number;
  /** 1/5/15-minute load averages at the start: a busy machine makes timings indicative only. */
  loadAvg: number[];
  platform: string;
  arch: string;
  node: string;
  v8: string;
  /** Flags node was started with (e.g. --experimental-wasm-relaxed-simd). */
  execArgv: string[];
  /** ISO date-time of the run. */
  date: string;
  source: SourceInfo | null;
}

/** MemAvailable from /proc/meminfo (bytes), or os.freemem() elsewhere. */
export function availableMemBytes(): number {
  try {
    const m = /MemAvailable:\s+(\d+) kB/.exec(readFileSync('/proc/meminfo', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch { /* not Linux */ }
  return os.freemem();
}

function cpuFlags(): string[] {
  try {
    const info = readFileSync('/proc/cpuinfo', 'utf8');
    const line = /^flags\s*:\s*(.*)$/m.exec(info);
    if (!line) return [];
    const have = new Set(line[1]!.split(/\s+/));
    return ['sse4_2', 'avx', 'avx2', 'fma', 'avx512f', 'avx512_bf16', 'avx512_vnni'].filter((f) => have.has(f));
  } catch {
    return [];
  }
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    logicalCores: cpus.length,
    availableParallelism: typeof os.availableParallelism === 'function' ? os.availableParallelism() : cpus.length,
    cpuFlags: cpuFlags(),
    totalMemBytes: os.totalmem(),
    availableMemBytes: availableMemBytes(),
    loadAvg: os.loadavg(),
    platform: `${os.type()} ${os.release()}`,
    arch: process.arch,
    node: process.version,
    v8: process.versions.v8,
    execArgv: process.execArgv,
    date: new Date().toISOString(),
    source: sourceInfo(),
  };
}

/** One line for table captions: "AMD EPYC, 2 cores, Node v20.20.2, 2025-…". */
export function describeMachine(m: MachineInfo): string {
  return `${m.cpuModel} (${m.logicalCores} logical cores${m.cpuFlags.length ? `; ${m.cpuFlags.join(' ')}` : ''}), ` +
    `${(m.totalMemBytes / 2 ** 30).toFixed(0)} GiB RAM, ${m.platform} ${m.arch}, Node ${m.node} (V8 ${m.v8}), ` +
    `load avg ${m.loadAvg.map((x) => x.toFixed(2)).join('/')} at start, ${m.date}` +
    (m.source ? `; source ${m.source.commit ?? '?'}${m.source.uncommittedFiles ? ` + ${m.source.uncommittedFiles} uncommitted file(s)` : ''}` : '');
}
