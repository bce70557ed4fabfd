/**
 * What bundlers for browsers put in place of node.ts (package.json's "browser" map): the same functions, none of
 * which loads anything. Type-only imports, so nothing of node.ts reaches the bundle.
 */
import type * as node from './node.js';

export const isNode: boolean = false;
export const nodeWorkerThreads: typeof node.nodeWorkerThreads = async () => null;
export const nodeOs: typeof node.nodeOs = async () => null;
export const nodeV8: typeof node.nodeV8 = async () => null;
export const nodeDawn: typeof node.nodeDawn = async () => null;
