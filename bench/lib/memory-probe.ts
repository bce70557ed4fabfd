/**
 * Process memory probes for the memory benchmarks: current and peak resident set size (Linux
 * /proc/self/status, with the peak reset through /proc/self/clear_refs) and Node's own counters.
 */
import { readFileSync, writeFileSync } from 'node:fs';

function statusKb(field: string): number | null {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync('/proc/self/status', 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** Resident set size now (bytes), or null where /proc is unavailable. */
export function rssBytes(): number | null {
  return statusKb('VmRSS');
}

/** Peak resident set size since the last reset (bytes), or null. */
export function peakRssBytes(): number | null {
  return statusKb('VmHWM');
}

/** Resets the peak RSS to the current RSS (Linux ≥ 4.0); false where that is not possible. */
export function resetPeakRss(): boolean {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
}

export interface NodeMemory {
  rss: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
}

/** process.memoryUsage() after a full GC where --expose-gc allows one. */
export function nodeMemory(): NodeMemory {
  (globalThis as { gc?: () => void }).gc?.();
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers };
}

export function diffMemory(a: NodeMemory, b: NodeMemory): NodeMemory {
  return { rss: b.rss - a.rss, heapUsed: b.heapUsed - a.heapUsed, external: b.external - a.external, arrayBuffers: b.arrayBuffers - a.arrayBuffers };
}

export const gcAvailable = (): boolean => typeof (globalThis as { gc?: unknown }).gc === 'function';
