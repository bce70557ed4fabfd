/**
 * Interchange with PyTorch/transformers: attention saved per layer as [batch, heads, q, k] (what
 * `output_attentions=True` returns), in .npy or safetensors files laid out byte by byte as numpy and
 * safetensors.torch write them, plus a capture.json manifest. There is no Python here, so the files
 * are built from the published specs.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FormatError, ShapeError } from '../../../src/errors.js';
import { f32ToBf16 } from '../../../src/tensor/dtype.js';
import { decodeCapture, encodeCapture, makeCapture } from '../../../src/viz/capture-file.js';
import { tokenMap } from '../../../src/viz/maps.js';
import { exportCapture, readCapture, readNpyFile, readSafetensorsFile, writeCapture } from '../../../src/viz/node-files.js';
import { ndarrayFromValues, writeNpz } from '../../../src/io/npy.js';
import { expectClose } from '../../helpers/close.js';
import { randomAttention, tinyPng } from './fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'vlm-interchange-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** numpy.save layout for a little-endian float32 C-order array (format 1.0, 64-byte aligned header). */
function numpySave(values: Float32Array, shape: number[]): Uint8Array {
  const tuple = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': ${tuple}, }`;
  while ((10 + header.length + 1) % 64) header += ' ';
  header += '\n';
  const out = new Uint8Array(10 + header.length + values.length * 4);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, header.length & 0xff, header.length >> 8]);
  for (let i = 0; i < header.length; i++) out[10 + i] = header.charCodeAt(i);
  new Uint8Array(out.buffer, 10 + header.length).set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
  return out;
}

/** safetensors.torch.save_file layout: keys sorted, {"format":"pt"} metadata, header padded to 8 with spaces. */
function torchSaveFile(tensors: [string, 'F32' | 'BF16', number[], Uint8Array][]): Uint8Array {
  const sorted = [...tensors].sort((a, b) => (a[0] < b[0] ? -1 : 1));
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let pos = 0;
  for (const [name, dtype, shape, bytes] of sorted) { header[name] = { dtype, shape, data_offsets: [pos, pos + bytes.length] }; pos += bytes.length; }
  let json = JSON.stringify(header);
  while (json.length % 8) json += ' ';
  const out = new Uint8Array(8 + json.length + pos);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  for (let i = 0; i < json.length; i++) out[8 + i] = json.charCodeAt(i);
  let o = 8 + json.length;
  for (const [, , , bytes] of sorted) { out.set(bytes, o); o += bytes.length; }
  return out;
}

const B = 2, H = 3, L = 3;
const tokens = ['<s>', ...Array.from({ length: 12 }, () => '<image>'), '▁a', '▁red', '▁ball'];
const N = tokens.length;
/** Per-layer [batch, heads, N, N] attention, batch element 1 being the one to view. */
const layers = Array.from({ length: L }, (_, l) => {
  const a = new Float32Array(B * H * N * N);
  a.set(randomAttention(H, N, N, 50 + l), 0);
  a.set(randomAttention(H, N, N, 90 + l), H * N * N);
  return a;
});

function manifest(extra: Record<string, unknown>): string {
  return JSON.stringify({ format: 'vlm-attention-capture-manifest', version: 1, tokens, grid: [3, 4], imageSpan: [1, 13], image: 'image.png', batchIndex: 1, ...extra });
}

describe('reading attention exported from PyTorch', () => {
  it('per-layer .npy files (np.save of out.attentions[i]) + capture.json → the same maps as the source arrays', async () => {
    const d = join(dir, 'npy');
    mkdirSync(join(d, 'attn'), { recursive: true });
    writeFileSync(join(d, 'image.png'), tinyPng(8, 6));
    layers.forEach((a, l) => writeFileSync(join(d, 'attn', `layer_${String(l).padStart(2, '0')}.npy`), numpySave(a, [B, H, N, N])));
    writeFileSync(join(d, 'capture.json'), manifest({ attention: ['attn/layer_00.npy', 'attn/layer_01.npy', 'attn/layer_02.npy'], meta: { model: 'llava-hf/llava-1.5-7b-hf (fixture)' } }));
    const c = await readCapture(d);
    expect(c.info.numLayers).toBe(L);
    expect(c.info.numHeads).toBe(H);
    expect(c.info.textPositions).toEqual([0, 13, 14, 15]);
    // The batch element 1 was selected.
    for (let l = 0; l < L; l++) expect(Array.from(c.attention[l]!)).toEqual(Array.from(layers[l]!.subarray(H * N * N)));
    const m = tokenMap(c, [14], { heads: [2] });
    const ref = Array.from({ length: 12 }, (_, p) => layers.reduce((s, a) => s + a[H * N * N + (2 * N + 14) * N + 1 + p]!, 0) / L);
    expectClose(m.values, ref, { atol: 1e-7 });
    expect(c.info.meta.model).toContain('llava');
  });

  it('one safetensors file (save_file of {"attentions.i": …}, natural key order, bf16) and a stacked npy', async () => {
    const d = join(dir, 'st');
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, 'image.png'), tinyPng(8, 6));
    // 12 layers so that "attentions.10" must sort after "attentions.9".
    const many = Array.from({ length: 12 }, (_, l) => layers[l % L]!.map((v) => v * (1 + l / 100)));
    const bf = (a: Float32Array) => { const u = new Uint16Array(a.length); for (let i = 0; i < a.length; i++) u[i] = f32ToBf16(a[i]!); return new Uint8Array(u.buffer); };
    writeFileSync(join(d, 'attentions.safetensors'), torchSaveFile(many.map((a, l) => [`attentions.${l}`, 'BF16', [B, H, N, N], bf(a)])));
    writeFileSync(join(d, 'capture.json'), manifest({ attention: 'attentions.safetensors' }));
    const c = await readCapture(join(d, 'capture.json'));
    expect(c.info.numLayers).toBe(12);
    for (const l of [2, 9, 10, 11]) expect(c.attention[l]![5]).toBeCloseTo(many[l]![H * N * N + 5]!, 2);
    // torch.stack(out.attentions) saved as one [layers, batch, heads, q, k] array.
    const stacked = new Float32Array(L * B * H * N * N);
    layers.forEach((a, l) => stacked.set(a, l * a.length));
    writeFileSync(join(d, 'stacked.npy'), numpySave(stacked, [L, B, H, N, N]));
    writeFileSync(join(d, 'stacked.json'), manifest({ attention: 'stacked.npy' }));
    const s = await readCapture(join(d, 'stacked.json'));
    expect(s.info.numLayers).toBe(L);
    expect(Array.from(s.attention[2]!)).toEqual(Array.from(layers[2]!.subarray(H * N * N)));
    // An .npz archive (np.savez(attentions_0=…, …)).
    writeFileSync(join(d, 'attn.npz'), writeNpz(layers.map((a, l) => [`attentions_${l}`, ndarrayFromValues(a, [B, H, N, N])] as [string, ReturnType<typeof ndarrayFromValues>])));
    writeFileSync(join(d, 'npz.json'), manifest({ attention: 'attn.npz' }));
    expect((await readCapture(join(d, 'npz.json'))).info.numLayers).toBe(L);
  });

  it('bad exports give typed errors naming the part at fault', async () => {
    const d = join(dir, 'bad');
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, 'image.png'), tinyPng(8, 6));
    writeFileSync(join(d, 'l0.npy'), numpySave(layers[0]!, [B, H, N, N]));
    writeFileSync(join(d, 'l1.npy'), numpySave(layers[1]!.subarray(0, B * H * N * (N - 1)), [B, H, N, N - 1]));
    writeFileSync(join(d, 'capture.json'), manifest({ attention: ['l0.npy', 'l1.npy'] }));
    await expect(readCapture(d)).rejects.toThrow(/attention\[1\]: seqLen is 15, expected 16; shape \[3, 16, 15\] \(after the batch dimension of \[2, 3, 16, 15\]\)/);
    writeFileSync(join(d, 'capture.json'), manifest({ attention: ['l0.npy'], batchIndex: 2 }));
    await expect(readCapture(d)).rejects.toThrow(ShapeError);
    writeFileSync(join(d, 'trunc.npy'), numpySave(layers[0]!, [B, H, N, N]).subarray(0, 500));
    writeFileSync(join(d, 'capture.json'), manifest({ attention: ['trunc.npy'] }));
    await expect(readCapture(d)).rejects.toThrow(FormatError);
    writeFileSync(join(d, 'capture.json'), manifest({ attention: ['l0.npy'], batchIndex: '0' }));
    await expect(readCapture(d)).rejects.toThrow(/"batchIndex" must be an integer/);
    writeFileSync(join(d, 'capture.json'), manifest({ attention: ['l0.npy'], masks: ['dog.npy'] }));
    await expect(readCapture(d)).rejects.toThrow(/"masks" must be an object/);
    writeFileSync(join(d, 'capture.json'), '{ not json');
    await expect(readCapture(d)).rejects.toThrow(/not valid JSON/);
    await expect(readCapture(join(d, 'missing'))).rejects.toThrow(/no such file/);
    // A file that cannot be read keeps the system's code and error (ENOENT, EISDIR), as FormatError's `code`/`cause`.
    await expect(readSafetensorsFile(join(d, 'missing.safetensors'))).rejects.toThrow(expect.objectContaining({ name: 'FormatError', code: 'ENOENT', cause: expect.objectContaining({ code: 'ENOENT' }) }));
    await expect(readNpyFile(d)).rejects.toThrow(expect.objectContaining({ name: 'FormatError', code: 'EISDIR' }));
    // Files the manifest names that are not there: FormatError naming the file, not Node's ENOENT.
    writeFileSync(join(d, 'capture.json'), manifest({ attention: ['l0.npy', 'nope.npy'] }));
    await expect(readCapture(d)).rejects.toThrow(expect.objectContaining({ name: 'FormatError', path: join(d, 'nope.npy') }));
    writeFileSync(join(d, 'capture.json'), manifest({ attention: ['l0.npy'], image: 'nope.png' }));
    await expect(readCapture(d)).rejects.toThrow(FormatError);
    writeFileSync(join(d, 'x.vlmcap.safetensors'), new Uint8Array([1, 2, 3]));
    await expect(readCapture(join(d, 'x.vlmcap.safetensors'))).rejects.toThrow(FormatError);
  });
});

describe('exporting', () => {
  const c = makeCapture({
    tokens, grid: [3, 4], imageSpan: [1, 13], imagePng: tinyPng(8, 6), batchIndex: 1,
    attention: layers.map((a) => ndarrayFromValues(a, [B, H, N, N])), masks: { ball: ndarrayFromValues(Array.from({ length: 12 }, (_, i) => (i % 5 === 0 ? 1 : 0)), [3, 4]) },
    headImportance: ndarrayFromValues(Array.from({ length: L * H }, (_, i) => i / 10), [L, H]), headImportanceMethod: 'sav',
  });
  for (const format of ['safetensors', 'npy'] as const) {
    it(`round-trips through ${format} export + manifest`, async () => {
      const d = join(dir, `export-${format}`);
      const files = await exportCapture(c, d, { format });
      expect(files.some((f) => f.endsWith('capture.json'))).toBe(true);
      const back = await readCapture(d);
      expect(back.info.tokens).toEqual(c.info.tokens);
      expect(back.attention.map((a) => Array.from(a))).toEqual(c.attention.map((a) => Array.from(a)));
      expect(Array.from(back.masks!.get('ball')!)).toEqual(Array.from(c.masks!.get('ball')!));
      expect(back.info.headImportance?.method).toBe('sav');
      // The ranking's description survives the manifest too.
      const described = { ...c, info: { ...c.info, headImportance: { method: 'mine', description: 'a description' } } };
      await exportCapture(described, `${d}-described`, { format });
      expect((await readCapture(`${d}-described`)).info.headImportance).toEqual({ method: 'mine', description: 'a description' });
    });
  }
  it('writes a capture file that decodes to the same capture', async () => {
    const f = join(dir, 'c.vlmcap.safetensors');
    await writeCapture(f, c);
    const back = await readCapture(f);
    expect(back.info).toEqual(c.info);
    expect(decodeCapture(encodeCapture(back)).info).toEqual(c.info);
  });
});
