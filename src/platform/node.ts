/**
 * The Node-only modules the core loads lazily (worker threads, CPU count, V8 flags, Dawn). Bundlers that build
 * for browsers swap this file for browser.ts (package.json's "browser" map), so a browser bundle neither names
 * `node:*` modules nor pulls in the `webgpu` package; in Node each function loads its module on first use.
 */

/** Whether this is Node (the functions below return null where it is not). */
export const isNode = typeof process !== 'undefined' && !!process.versions?.node;

export async function nodeWorkerThreads(): Promise<typeof import('node:worker_threads') | null> {
  return isNode ? import('node:worker_threads') : null;
}

export async function nodeOs(): Promise<typeof import('node:os') | null> {
  return isNode ? import('node:os') : null;
}

export async function nodeV8(): Promise<typeof import('node:v8') | null> {
  return isNode ? import('node:v8') : null;
}

/** Dawn's Node bindings (the optional `webgpu` package): `create(flags)` gives a `GPU`. */
export interface DawnModule {
  create(flags: string[]): GPU;
  globals: Record<string, unknown>;
}

/** Loads the `webgpu` package; null outside Node; throws where it is not installed. */
export async function nodeDawn(): Promise<DawnModule | null> {
  // The specifier as a string: TypeScript need not resolve the optional package, and webpack leaves it alone.
  return isNode ? ((await import(/* webpackIgnore: true */ 'webgpu' as string)) as DawnModule) : null;
}
