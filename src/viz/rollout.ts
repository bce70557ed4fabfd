/**
 * Attention rollout and attention flow (Abnar & Zuidema 2020, arXiv 2005.00928;
 * samiraabnar/attention_flow), in float64.
 *
 * Both start from the head-averaged attention W̄_l of each layer l = 1 … L (row-stochastic n×n,
 * row i = query i, column j = key j) with the residual connection folded in:
 *
 *   A_l = normalise((1 − α)·W̄_l + α·I),  α = 0.5,  normalise = divide each row by its sum.
 *
 * Rollout:  Ã_1 = A_1,  Ã_l = A_l · Ã_{l−1}   ⇒   Ã_L = A_L · A_{L−1} ⋯ A_1.
 * The order matters (matrix products do not commute): the seed note's `rollout = rollout @ A_l`
 * computes A_1 ⋯ A_L, which is wrong (spec relevance.md §1.7 item 4). Ã_L[i, j] is how much input j
 * contributes to output i.
 *
 *   Ã = A_3·A_2·A_1:      row i of Ã = e_iᵀ·A_3·A_2·A_1 (vector × matrix, top layer first)
 *                         column j of Ã = A_3·(A_2·(A_1·e_j)) (matrix × vector, bottom layer first)
 *
 * Rows and columns are computed with L vector–matrix products (O(L·n²) each) instead of the full
 * O(L·n³) product, so a map for one text token over a 600-token sequence and 32 layers is cheap.
 *
 * Flow: the layers form a DAG with nodes (layer l, position i), l = 0 … L, and an edge from (l, i)
 * down to (l−1, j) of capacity A_l[i, j]. flow[i, j] = max-flow from output node (L, i) to input
 * node (0, j), then each row is normalised to sum 1. Each value is one max-flow problem on a graph
 * of (L+1)·n nodes and L·n² edges, so a row costs n max-flows: far costlier than rollout and
 * impractical for hundreds of tokens × 32 layers (hence the `maxWork` guard).
 */
import { ShapeError, ValueError } from '../errors.js';

/** Options shared by rollout and flow. */
export interface RolloutOptions {
  /** Weight α of the identity (residual) in normalise((1−α)·W̄ + α·I); default 0.5. */
  residual?: number;
}

function checkLayers(layers: readonly ArrayLike<number>[], n: number, argument = 'layers'): void {
  if (!Number.isInteger(n) || n < 1) throw new ValueError(`n must be an integer ≥ 1, got ${n}`, 'n');
  if (!Array.isArray(layers) || layers.length < 1) throw new ShapeError(`${argument} must hold at least one n×n matrix`, argument, 'numLayers');
  layers.forEach((m, l) => {
    if (!m || m.length !== n * n) throw new ShapeError(`${argument}[${l}] must be n×n = ${n}×${n} (${n * n} values), got ${m?.length}`, `${argument}[${l}]`, 'seqLen');
    // Attention weights: a NaN, infinite or negative one would pass for a masked row or unbalance its row.
    for (let x = 0; x < m.length; x++) {
      const v = m[x]!;
      if (!(v >= 0 && v < Infinity)) {
        throw new ValueError(`${argument}[${l}][${Math.floor(x / n)}, ${x % n}] is ${v}: attention weights must be finite and ≥ 0`, `${argument}[${l}]`);
      }
    }
  });
}

function residualOf(opts: RolloutOptions): number {
  const a = opts.residual ?? 0.5;
  if (!(a >= 0 && a <= 1)) throw new ValueError(`residual must be in [0, 1], got ${a}`, 'residual');
  return a;
}

/**
 * normalise((1 − α)·W + α·I) for an n×n matrix W (row-major), in float64. A zero row of W (a fully
 * masked query) becomes e_i.
 */
export function residualAugment(w: ArrayLike<number>, n: number, opts: RolloutOptions = {}): Float64Array {
  checkLayers([w], n, 'w');
  const a = residualOf(opts);
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < n; j++) {
      const v = (1 - a) * w[i * n + j]! + (i === j ? a : 0);
      out[i * n + j] = v;
      s += v;
    }
    if (s > 0) for (let j = 0; j < n; j++) out[i * n + j] = out[i * n + j]! / s;
    else out[i * n + i] = 1;
  }
  return out;
}

/**
 * Full rollout Ã_L = A_L ⋯ A_1 (n×n, float64, row-major). `layers[0]` is the first (lowest) layer's
 * head-averaged attention W̄_1. Cost O(L·n³); prefer `rolloutRows`/`rolloutColumns` for maps.
 */
export function attentionRollout(layers: readonly ArrayLike<number>[], n: number, opts: RolloutOptions = {}): Float64Array {
  checkLayers(layers, n);
  let acc = residualAugment(layers[0]!, n, opts);
  for (let l = 1; l < layers.length; l++) {
    const a = residualAugment(layers[l]!, n, opts);
    const next = new Float64Array(n * n);
    // next = A_l · acc
    for (let i = 0; i < n; i++) {
      for (let k = 0; k < n; k++) {
        const aik = a[i * n + k]!;
        if (aik === 0) continue;
        for (let j = 0; j < n; j++) next[i * n + j] += aik * acc[k * n + j]!;
      }
    }
    acc = next;
  }
  return acc;
}

/** Query rows for rollout and flow: an array of positions in 0..n−1. */
function checkRows(rows: readonly number[], n: number): void {
  if (!Array.isArray(rows)) throw new ValueError(`rows must be an array of query positions, got ${rows === null ? 'null' : typeof rows}`, 'rows');
  for (const r of rows) if (!Number.isInteger(r) || r < 0 || r >= n) throw new ShapeError(`rows contains ${r}; expected 0..${n - 1}`, 'rows', 'seqLen');
}

/**
 * Rows `rows` of Ã_L: [rows.length, n] (float64), by vector–matrix products from the top layer down. `maxWork`
 * (default none) refuses (ValueError) more than that many multiply-adds, rows·L·n².
 */
export function rolloutRows(layers: readonly ArrayLike<number>[], n: number, rows: readonly number[], opts: RolloutOptions & { maxWork?: number } = {}): Float64Array {
  checkLayers(layers, n);
  checkRows(rows, n);
  if (opts.maxWork !== undefined) {
    const work = rows.length * layers.length * n * n;
    if (!(work <= opts.maxWork)) throw new ValueError(`rollout of ${rows.length} row(s) through ${layers.length} layers at n = ${n} needs ~${work.toExponential(1)} multiply-adds (> maxWork ${opts.maxWork.toExponential(1)}); choose fewer rows or layers`, 'maxWork');
  }
  const aug = layers.map((w) => residualAugment(w, n, opts));
  const out = new Float64Array(rows.length * n);
  let v = new Float64Array(n), t = new Float64Array(n);
  rows.forEach((r, ri) => {
    v.fill(0);
    v[r] = 1;
    for (let l = aug.length - 1; l >= 0; l--) {
      const a = aug[l]!;
      t.fill(0);
      for (let k = 0; k < n; k++) {
        const vk = v[k]!;
        if (vk === 0) continue;
        for (let j = 0; j < n; j++) t[j] += vk * a[k * n + j]!;
      }
      [v, t] = [t, v];
    }
    out.set(v, ri * n);
  });
  return out;
}

/** Columns `cols` of Ã_L: [cols.length, n] (float64; entry [c, i] = Ã_L[i, cols[c]]), bottom layer first. */
export function rolloutColumns(layers: readonly ArrayLike<number>[], n: number, cols: readonly number[], opts: RolloutOptions = {}): Float64Array {
  checkLayers(layers, n);
  for (const c of cols) if (!Number.isInteger(c) || c < 0 || c >= n) throw new ShapeError(`cols contains ${c}; expected 0..${n - 1}`, 'cols', 'seqLen');
  const aug = layers.map((w) => residualAugment(w, n, opts));
  const out = new Float64Array(cols.length * n);
  let v = new Float64Array(n), t = new Float64Array(n);
  cols.forEach((c, ci) => {
    v.fill(0);
    v[c] = 1;
    for (let l = 0; l < aug.length; l++) {
      const a = aug[l]!;
      for (let i = 0; i < n; i++) {
        let s = 0;
        for (let j = 0; j < n; j++) s += a[i * n + j]! * v[j]!;
        t[i] = s;
      }
      [v, t] = [t, v];
    }
    out.set(v, ci * n);
  });
  return out;
}

/** Options of `attentionFlow`. */
export interface FlowOptions extends RolloutOptions {
  /**
   * Refuse (ValueError) when the estimated work, rows·n·(L·n² edges), exceeds this many edge visits
   * (default 2e9, about a second or two per 1e9 on one core).
   */
  maxWork?: number;
}

/** Estimated edge visits of `attentionFlow` for `numRows` rows: numRows · n max-flows on L·n² edges (× a small phase count). */
export function flowWork(numRows: number, n: number, numLayers: number): number {
  return numRows * n * numLayers * n * n * 4;
}

/**
 * Attention flow rows: for each output position r in `rows`, the max-flow from node (L, r) to every
 * input node (0, j), normalised to sum 1 over j. Returns [rows.length, n] (float64).
 * Max-flow by Dinic's algorithm (BFS level graph + blocking flow), exact up to float rounding.
 */
export function attentionFlow(layers: readonly ArrayLike<number>[], n: number, rows: readonly number[], opts: FlowOptions = {}): Float64Array {
  checkLayers(layers, n);
  checkRows(rows, n);
  const L = layers.length;
  const maxWork = opts.maxWork ?? 2e9;
  if (typeof maxWork !== 'number' || !(maxWork > 0)) throw new ValueError(`maxWork must be a number > 0 (edge visits allowed), got ${JSON.stringify(maxWork)}`, 'maxWork');
  const work = flowWork(rows.length, n, L);
  if (work > maxWork) {
    throw new ValueError(`attention flow for ${rows.length} row(s), ${L} layers and n = ${n} needs ~${work.toExponential(1)} edge visits (> maxWork ${maxWork.toExponential(1)}); use rollout, fewer layers or rows, or raise maxWork`, 'maxWork');
  }
  const aug = layers.map((w) => residualAugment(w, n, opts));
  const net = new LayeredFlow(aug, n);
  const out = new Float64Array(rows.length * n);
  rows.forEach((r, ri) => {
    let s = 0;
    for (let j = 0; j < n; j++) {
      const f = net.maxFlow(r, j);
      out[ri * n + j] = f;
      s += f;
    }
    if (s > 0) for (let j = 0; j < n; j++) out[ri * n + j] = out[ri * n + j]! / s;
  });
  return out;
}

const EPS = 1e-15;

/**
 * The layered flow network: node (l, i) has id l·n + i; edges go from layer l to layer l−1 with
 * capacity A_l[i, j] (`aug[l−1]`), plus their residual reverse edges. Rebuilt capacities per query.
 */
export class LayeredFlow {
  private readonly numNodes: number;
  /** Per edge: head (to), capacity, original capacity; edges 2e and 2e+1 are a forward/reverse pair. */
  private readonly to: Int32Array;
  private readonly cap: Float64Array;
  private readonly cap0: Float64Array;
  private readonly first: Int32Array;
  private readonly next: Int32Array;
  private readonly level: Int32Array;
  private readonly iter: Int32Array;

  constructor(aug: readonly Float64Array[], private readonly n: number) {
    const L = aug.length;
    this.numNodes = (L + 1) * n;
    let m = 0;
    for (const a of aug) for (let k = 0; k < n * n; k++) if (a[k]! > 0) m++;
    this.to = new Int32Array(2 * m);
    this.cap = new Float64Array(2 * m);
    this.cap0 = new Float64Array(2 * m);
    this.next = new Int32Array(2 * m);
    this.first = new Int32Array(this.numNodes).fill(-1);
    this.level = new Int32Array(this.numNodes);
    this.iter = new Int32Array(this.numNodes);
    let e = 0;
    const add = (u: number, v: number, c: number) => {
      this.to[e] = v; this.cap0[e] = c; this.next[e] = this.first[u]!; this.first[u] = e; e++;
      this.to[e] = u; this.cap0[e] = 0; this.next[e] = this.first[v]!; this.first[v] = e; e++;
    };
    for (let l = 1; l <= L; l++) {
      const a = aug[l - 1]!;
      for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) {
        const c = a[i * n + j]!;
        if (c > 0) add(l * n + i, (l - 1) * n + j, c);
      }
    }
  }

  /** Max-flow from output node (L, source) to input node (0, sink). */
  maxFlow(source: number, sink: number): number {
    const L = this.numNodes / this.n - 1;
    const s = L * this.n + source, t = sink;
    this.cap.set(this.cap0);
    let flow = 0;
    while (this.bfs(s, t)) {
      for (let u = 0; u < this.numNodes; u++) this.iter[u] = this.first[u]!;
      for (;;) {
        const f = this.dfs(s, t, Infinity);
        if (f <= EPS) break;
        flow += f;
      }
    }
    return flow;
  }

  private bfs(s: number, t: number): boolean {
    this.level.fill(-1);
    const queue = new Int32Array(this.numNodes);
    let head = 0, tail = 0;
    queue[tail++] = s;
    this.level[s] = 0;
    while (head < tail) {
      const u = queue[head++]!;
      for (let e = this.first[u]!; e >= 0; e = this.next[e]!) {
        const v = this.to[e]!;
        if (this.cap[e]! > EPS && this.level[v]! < 0) { this.level[v] = this.level[u]! + 1; queue[tail++] = v; }
      }
    }
    return this.level[t]! >= 0;
  }

  private dfs(u: number, t: number, f: number): number {
    if (u === t) return f;
    for (let e = this.iter[u]!; e >= 0; e = this.next[e]!, this.iter[u] = e) {
      const v = this.to[e]!;
      if (this.cap[e]! > EPS && this.level[v] === this.level[u]! + 1) {
        const d = this.dfs(v, t, Math.min(f, this.cap[e]!));
        if (d > EPS) {
          this.cap[e] = this.cap[e]! - d;
          this.cap[e ^ 1] = this.cap[e ^ 1]! + d;
          return d;
        }
      }
    }
    return 0;
  }
}
