/**
 * Path choice of the WebAssembly kernels, shared by the backend (kernels/cpu/wasm-backend.ts) and the cost
 * model (cost/attention-cost.ts), so the model predicts the path the kernel takes. No Node or WASM imports.
 */

/** The plan fields the choice reads. */
export interface DecodeShape { seqLenQ: number; seqLenK: number; numHeads: number; numKvHeads: number }

/**
 * Whether a call takes the decode path: at most 16 queries and 256 rows (numHeads · seqLenQ) in all, and
 * either a KV of 128 keys or more, or at most 8 rows a KV head. Prefill pads each head's queries to 8 and
 * splits work by head, so a decode step over a short KV (the first tokens of a generation) wasted up to
 * 8× its FLOPs there: H32/8 d128 with one query took 73–75 / 187–195 / 226–229 µs at 16 / 64 / 127 keys
 * on 2 threads, and 30–32 / 52 / 62–69 µs on this path (BENCHMARKS.md, 2026-12-02). With 16–32 rows a KV
 * head the prefill path stays faster below 128 keys (H32/8 with 8 queries: 191 against 431 µs at 64 keys).
 */
export function decodePath(plan: DecodeShape): boolean {
  if (plan.seqLenQ > 16 || plan.numHeads * plan.seqLenQ > 256) return false;
  return plan.seqLenK >= 128 || (plan.numHeads / plan.numKvHeads) * plan.seqLenQ <= 8;
}
