/**
 * Child processes for measurements that need other node flags (relaxed SIMD) or that may exhaust
 * memory (ORT materialising N² scores): the parent survives whatever the child does. The child
 * writes its JSON to a file the parent names with --child-out.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';

export type ChildResult<T> =
  | { ok: true; value: T; wallMs: number }
  | { ok: false; error: string; exitCode: number | null; signal: string | null; wallMs: number };

const accepted = new Map<string, boolean>();

/**
 * Whether this node starts with `flag` (V8 flags included: allowedNodeEnvironmentFlags lists only
 * what NODE_OPTIONS may carry, so ask node itself).
 */
export function nodeAcceptsFlag(flag: string): boolean {
  let ok = accepted.get(flag);
  if (ok === undefined) {
    ok = spawnSync(process.execPath, [flag, '-e', '0'], { stdio: 'ignore' }).status === 0;
    accepted.set(flag, ok);
  }
  return ok;
}

/**
 * Runs `node [nodeFlags] script [args] --child-out=<tmp>`; stdout/stderr are passed through
 * (prefixed) so progress stays visible. Resolves with the parsed JSON or the failure.
 */
export function runChild<T>(script: string, args: readonly string[], opts: { nodeFlags?: readonly string[]; label?: string; timeoutMs?: number } = {}): Promise<ChildResult<T>> {
  const dir = mkdtempSync(join(os.tmpdir(), 'vlm-bench-'));
  const outPath = join(dir, 'result.json');
  const label = opts.label ?? 'child';
  const t0 = performance.now();
  return new Promise((resolvePromise) => {
    const child = spawn(process.execPath, [...(opts.nodeFlags ?? []), script, ...args, `--child-out=${outPath}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderrTail = '';
    const relay = (stream: NodeJS.ReadableStream, sink: NodeJS.WriteStream, keep: boolean) => {
      let buf = '';
      stream.setEncoding('utf8');
      stream.on('data', (d: string) => {
        buf += d;
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          sink.write(`  [${label}] ${line}\n`);
          if (keep) stderrTail = (stderrTail + line + '\n').slice(-4000);
        }
      });
      stream.on('end', () => { if (buf) { sink.write(`  [${label}] ${buf}\n`); if (keep) stderrTail += buf; } });
    };
    relay(child.stdout!, process.stdout, false);
    relay(child.stderr!, process.stderr, true);
    const timer = opts.timeoutMs ? setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs) : null;
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      const wallMs = performance.now() - t0;
      try {
        if (code === 0) {
          const value = JSON.parse(readFileSync(outPath, 'utf8')) as T;
          resolvePromise({ ok: true, value, wallMs });
          return;
        }
        resolvePromise({ ok: false, error: stderrTail.trim().split('\n').slice(-6).join('\n') || `exit code ${code}`, exitCode: code, signal, wallMs });
      } catch (e) {
        resolvePromise({ ok: false, error: `child result unreadable: ${(e as Error).message}`, exitCode: code, signal, wallMs });
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}

/**
 * A long-lived child (node's fork, with its own node flags) that serves requests over IPC, so a
 * measurement that needs other flags can be interleaved with the parent's, shape by shape, under
 * the same machine load.
 */
export interface ChildServer {
  request<T>(message: Record<string, unknown>): Promise<T>;
  close(): Promise<void>;
}

interface Reply { id: number; ok: boolean; value?: unknown; error?: string }

export async function forkServer(script: string, args: readonly string[], nodeFlags: readonly string[]): Promise<ChildServer> {
  const { fork } = await import('node:child_process');
  const child = fork(script, [...args], { execArgv: [...process.execArgv, ...nodeFlags], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let nextId = 1;
  let exited: string | null = null;
  const fail = (why: string) => {
    exited = why;
    for (const p of pending.values()) p.reject(new Error(why));
    pending.clear();
  };
  child.on('message', (m: Reply) => {
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    if (m.ok) p.resolve(m.value); else p.reject(new Error(m.error ?? 'child request failed'));
  });
  child.on('exit', (code, signal) => fail(`child exited (code ${code}, signal ${signal})`));
  child.on('error', (e) => fail(`child failed: ${e.message}`));
  return {
    request<T>(message: Record<string, unknown>): Promise<T> {
      if (exited) return Promise.reject(new Error(exited));
      const id = nextId++;
      return new Promise<T>((resolve, reject) => {
        pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
        child.send({ ...message, id });
      });
    },
    async close() {
      if (exited) return;
      const done = new Promise<void>((r) => child.once('exit', () => r()));
      child.send({ type: 'exit', id: 0 });
      await done;
    },
  };
}

/** The child side of forkServer: answers each request with `handler`'s value or error. */
export function serveRequests(handler: (message: Record<string, unknown>) => Promise<unknown>): void {
  if (!process.send) throw new Error('bench: serveRequests needs an IPC channel (started by forkServer)');
  process.on('message', async (m: Record<string, unknown>) => {
    const id = m.id as number;
    if (m.type === 'exit') { process.disconnect?.(); process.exit(0); }
    try {
      process.send!({ id, ok: true, value: await handler(m) });
    } catch (e) {
      process.send!({ id, ok: false, error: (e as Error).stack ?? String(e) });
    }
  });
}
