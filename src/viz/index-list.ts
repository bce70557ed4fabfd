/**
 * Index lists as people type them ("all", "3", "0,2,5", "0-11", "0-3,8"), for the viewer's API and the
 * `viz` command: one parser, so both refuse the same lists with the same typed errors.
 */
import { ShapeError, ValueError } from '../errors.js';

/** Most entries one list may expand to (ranges included): far above any capture's dimensions. */
export const INDEX_LIST_MAX_ENTRIES = 100_000;

/**
 * Parses an index list into integers. `undefined`, '' and 'all' give `undefined` (every index); a range `a-b`
 * is inclusive. Single indices are returned as written (the caller checks them against its dimension and says
 * which one is wrong); a range must end inside [0, size), and the list may expand to at most
 * {@link INDEX_LIST_MAX_ENTRIES} entries: both are checked before anything is expanded. Malformed entries and
 * bad ranges are ShapeErrors naming `argument` and `dimension`; a list too long is a ValueError.
 */
export function parseIndexList(text: string | null | undefined, argument: string, dimension: string, size: number): number[] | undefined {
  if (text === null || text === undefined || text === '' || text === 'all') return undefined;
  if (text.length > 1_000_000) throw new ValueError(`${argument} is too long (${text.length} characters)`, argument);
  const out: number[] = [];
  const room = (n: number) => {
    if (out.length + n > INDEX_LIST_MAX_ENTRIES) throw new ValueError(`${argument} expands to more than ${INDEX_LIST_MAX_ENTRIES} entries`, argument);
  };
  for (const part of text.split(',')) {
    const r = /^\s*(\d+)\s*-\s*(\d+)\s*$/.exec(part);
    if (r) {
      const a = Number(r[1]), b = Number(r[2]);
      if (b < a) throw new ShapeError(`${argument}: range ${part.trim()} runs backwards`, argument, dimension);
      if (b >= size) throw new ShapeError(`${argument} contains ${b} (range ${part.trim()}); ${dimension} has ${size} entries (0..${size - 1})`, argument, dimension);
      room(b - a + 1);
      for (let i = a; i <= b; i++) out.push(i);
      continue;
    }
    if (!/^\s*-?\d+\s*$/.test(part)) {
      throw new ShapeError(`${argument} must be 'all' or comma-separated integers and a-b ranges, got ${JSON.stringify(text.slice(0, 80))}`, argument, dimension);
    }
    room(1);
    out.push(Number(part));
  }
  return out;
}
