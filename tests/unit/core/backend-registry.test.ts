/** The backend registry: a registered name resolves to its factory's backend, once; registering it again replaces it. */
import { describe, expect, it } from 'vitest';
import { UnsupportedError, attention, getBackend, randn, registerBackend, type HostBackend } from '../../../src/index.js';

describe('backend registry', () => {
  it('loads a registered backend once and a re-registered one afresh', async () => {
    let loads = 0;
    const fill = (value: number): HostBackend => ({ name: 'custom', run: (_p, _q, _k, _v, out) => { (out.data as Float32Array).fill(value); } });
    registerBackend('custom', () => { loads++; return fill(1); });
    expect(await getBackend('custom')).toBe(await getBackend('custom'));
    expect(loads).toBe(1);
    const q = randn([1, 3, 1, 4], 1);
    expect(Array.from((await attention(q, q, q, { backend: 'custom' as never })).out.toFloat32())).toEqual(new Array(12).fill(1));
    // Registered again (a test double, a fixed build): the new factory serves the next call.
    registerBackend('custom', () => { loads++; return fill(2); });
    expect(Array.from((await attention(q, q, q, { backend: 'custom' as never })).out.toFloat32())).toEqual(new Array(12).fill(2));
    expect(loads).toBe(2);
    await expect(getBackend('nope')).rejects.toThrow(UnsupportedError);
  });
});
