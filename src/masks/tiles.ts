/**
 * Tile plans: for each Q tile, the KV tiles a kernel visits and whether each needs the element
 * predicate (partial) or runs unmasked (full). Empty tiles are absent. One plan feeds the CPU
 * kernels, the WebGPU kernels and the cost model, so FLOP counts match what kernels do.
 */
import { type Mask, type MaskContext, TileClass, classifyTile } from './mask.js';

/**
 * The KV tiles each Q tile visits (empty tiles absent) for one mask and shape, in CSR form: the
 * entries of Q tile t are `entries[rowStart[t] .. rowStart[t + 1])`. Frozen and cached: never mutate.
 */
export interface TilePlan {
  /** Query rows covered. */
  readonly seqLenQ: number;
  /** Keys covered. */
  readonly seqLenK: number;
  /** Query rows per tile (the last tile may be shorter). */
  readonly tileQ: number;
  /** Keys per tile (the last tile may be shorter). */
  readonly tileK: number;
  /** ⌈seqLenQ / tileQ⌉. */
  readonly numQTiles: number;
  /** ⌈seqLenK / tileK⌉. */
  readonly numKTiles: number;
  /** CSR offsets into `entries`, length numQTiles + 1. */
  readonly rowStart: Int32Array;
  /** Visited KV tiles: (kTile << 1) | (partial ? 1 : 0), ascending kTile within a row. */
  readonly entries: Int32Array;
  /** Visited tiles that run unmasked (TileClass.Full). */
  readonly fullTiles: number;
  /** Visited tiles that evaluate the element predicate (TileClass.Partial). */
  readonly partialTiles: number;
  /** Elements inside visited tiles (clipped at the matrix edge): what the kernel computes. */
  readonly visitedElements: number;
}

const cache = new WeakMap<object, Map<string, TilePlan>>();
const unmaskedKey = {};

/**
 * Classifies every (Q tile, KV tile) of a seqLenQ × seqLenK attention under `mask` (null: unmasked,
 * every tile full) and lists the tiles to visit. Plans are cached per mask object and shape, so
 * kernels and the cost model can call this on every call.
 */
export function planTiles(mask: Mask | null, ctx: MaskContext, tileQ: number, tileK: number): TilePlan {
  const owner: object = mask ?? unmaskedKey;
  let byShape = cache.get(owner);
  if (!byShape) { byShape = new Map(); cache.set(owner, byShape); }
  const key = `${ctx.seqLenQ},${ctx.seqLenK},${tileQ},${tileK}`;
  let plan = byShape.get(key);
  if (!plan) {
    plan = buildPlan(mask, ctx, tileQ, tileK);
    if (byShape.size > 64) byShape.clear();
    byShape.set(key, plan);
  }
  return plan;
}

function buildPlan(mask: Mask | null, ctx: MaskContext, tileQ: number, tileK: number): TilePlan {
  const { seqLenQ: sq, seqLenK: sk } = ctx;
  const nq = Math.ceil(sq / tileQ), nk = Math.ceil(sk / tileK);
  const rowStart = new Int32Array(nq + 1);
  const entries: number[] = [];
  let full = 0, partial = 0, elems = 0;
  for (let qt = 0; qt < nq; qt++) {
    const q0 = qt * tileQ, q1 = Math.min(q0 + tileQ, sq);
    for (let kt = 0; kt < nk; kt++) {
      const k0 = kt * tileK, k1 = Math.min(k0 + tileK, sk);
      const c = mask ? classifyTile(mask, ctx, q0, q1, k0, k1) : TileClass.Full;
      if (c === TileClass.Empty) continue;
      entries.push((kt << 1) | (c === TileClass.Partial ? 1 : 0));
      if (c === TileClass.Partial) partial++; else full++;
      elems += (q1 - q0) * (k1 - k0);
    }
    rowStart[qt + 1] = entries.length;
  }
  return Object.freeze({
    seqLenQ: sq, seqLenK: sk, tileQ, tileK, numQTiles: nq, numKTiles: nk,
    rowStart, entries: Int32Array.from(entries), fullTiles: full, partialTiles: partial, visitedElements: elems,
  });
}

/** Fraction of the Sq×Sk tiles a plan visits. */
export function visitedFraction(plan: TilePlan): number {
  const total = plan.numQTiles * plan.numKTiles;
  return total === 0 ? 0 : (plan.fullTiles + plan.partialTiles) / total;
}
