import { describe, it } from 'vitest';
import { attention, attentionVarlen } from '../../src/index.js';
import { CASES, checkCase } from './cases.js';

describe('conformance: cpu-ts backend', () => {
  for (const c of CASES) {
    it(c.name, async () => {
      await checkCase(c, async (inp, o) => {
        if (inp.cuSeqlensQ) await attentionVarlen(inp.q, inp.k, inp.v, { cuSeqlensQ: inp.cuSeqlensQ, cuSeqlensK: inp.cuSeqlensK, scale: o.scale, softcap: o.softcap, mask: o.mask, out: o.out, lseOut: o.lseOut, backend: 'cpu-ts' });
        else await attention(inp.q, inp.k, inp.v, { scale: o.scale, softcap: o.softcap, mask: o.mask, layout: o.layout, out: o.out, lseOut: o.lseOut, backend: 'cpu-ts' });
      });
    }, 120_000);
  }
});
