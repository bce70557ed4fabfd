/**
 * A paged KV storage for tests: one layer, the sequences' blocks dealt out of shuffled physical ids (plus two
 * spare blocks), K and V written through the block tables. `values` makes a sequence's K or V (default
 * randn); int8 blocks are rotated when `rotate` is set, on `grid`.
 */
import { type Int8GridMode, KvBlockStorage, type KvDType, type Tensor, makeRotation, mulberry32, randn } from '../../src/index.js';

export interface PagedFixture { st: KvBlockStorage; tables: number[][] }

export function shuffledPagedStorage(
  dtype: KvDType, lens: number[], bs: number, Hk: number, D: number, seed: number,
  opts: { rotate?: boolean; grid?: Int8GridMode; values?: (shape: number[], seed: number) => Tensor } = {},
): PagedFixture {
  const values = opts.values ?? ((shape: number[], s: number) => randn(shape, s));
  const numBlocks = lens.reduce((a, l) => a + Math.ceil(l / bs), 0) + 2;
  const st = new KvBlockStorage(1, numBlocks, bs, Hk, D, dtype, opts.rotate ? makeRotation(1, Hk, D, seed) : null, undefined, null, opts.grid ?? 'uniform');
  const rng = mulberry32(seed);
  const ids = Array.from({ length: numBlocks }, (_, i) => i).sort(() => rng() - 0.5);
  let at = 0;
  const tables = lens.map((l) => ids.slice(at, (at += Math.ceil(l / bs))));
  lens.forEach((L, b) => {
    if (L === 0) return;
    const slots = Array.from({ length: L }, (_, j) => tables[b]![Math.floor(j / bs)]! * bs + (j % bs));
    st.writeSlots(0, slots, values([L, Hk, D], seed + b), values([L, Hk, D], seed + 50 + b));
  });
  return { st, tables };
}
