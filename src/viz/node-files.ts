/**
 * Node-only file helpers for the interchange formats and captures (exported from `vlm-attention/node`):
 * read/write .npy, .npz and safetensors files, read a capture from a capture file or from a
 * directory of arrays exported from PyTorch/transformers (a `capture.json` manifest), write a
 * capture, and export one back to the same per-layer formats.
 *
 * Manifest (`capture.json`, format "vlm-attention-capture-manifest", version 1), paths relative to it:
 *   {
 *     "format": "vlm-attention-capture-manifest", "version": 1,
 *     "tokens": ["<s>", "<image>", …] | "tokens.json",
 *     "grid": [24, 24],  "imageSpan": [1, 577],
 *     "image": "image.png",                               (optional)
 *     "attention": "attentions.safetensors"               (all tensors, natural key order, one per layer)
 *                | "attentions.npz" | "attn.npy"          (one array: [batch, heads, q, k] or stacked [layers, batch, heads, q, k])
 *                | ["layer_00.npy", "layer_01.npy", …]    (one file per layer)
 *                | { "file": "out.safetensors", "keys": ["attentions.0", …] },
 *     "batchIndex": 0, "queryPositions": […], "textPositions": […], "layerIds": […],  (optional)
 *     "layerMeans": (same forms, optional), "rollout": "rollout.npy", "headImportance": "heads.npy",
 *     "headImportanceMethod": "…", "headImportanceDescription": "…" (optional), "masks": { "dog": "dog_mask.npy" }, "meta": { "model": "…" }
 *   }
 * `output_attentions=True` returns a tuple of [batch, heads, q, k] tensors, one per layer: save them
 * with `safetensors.torch.save_file({f"attentions.{i}": a for i, a in enumerate(out.attentions)}, …)`
 * or `np.save(f"layer_{i:02d}.npy", a.float().cpu().numpy())`.
 */
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { FormatError, ShapeError, ValueError } from '../errors.js';
import { type NdArray, parseNpy, parseNpz, writeNpy, writeNpz } from '../io/npy.js';
import { parseSafetensors, writeSafetensors } from '../io/safetensors.js';
import { type Capture, type CaptureDType, type CaptureInit, decodeCapture, encodeCapture, makeCapture } from './capture-file.js';

/**
 * mkdir -p that always ends: Node 20's recursive mkdir loops forever (at 100% CPU) where a parent refuses creation
 * with ENOENT, as under /proc. Creates the missing ancestors one level at a time; a level that still cannot be made
 * throws its error.
 */
export async function ensureDir(dir: string): Promise<void> {
  try {
    await mkdir(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') {
      if (!(await stat(dir)).isDirectory()) throw new ValueError(`${dir} exists and is not a folder; give a folder for the output`, 'dir');
      return;
    }
    const parent = dirname(resolve(dir));
    if (code !== 'ENOENT' || parent === resolve(dir)) throw e;
    await ensureDir(parent);
    await mkdir(dir).catch((e2: NodeJS.ErrnoException) => { if (e2.code !== 'EEXIST') throw e2; });
  }
}


/** The `format` value of a capture manifest (`capture.json`); a manifest may also omit it. */
export const MANIFEST_FORMAT = 'vlm-attention-capture-manifest';

/** A file's bytes; a file that cannot be read (missing, a directory, no permission) is a FormatError naming it. */
async function readBytes(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new FormatError(`${path}: cannot read${err.code === 'ENOENT' ? ': no such file' : `: ${err.message}`}`, path, err);
  }
}

/** Reads a .npy file (see parseNpy; errors name the path). */
export async function readNpyFile(path: string): Promise<NdArray> {
  return parseNpy(await readBytes(path), { path });
}

/** Writes an array as a .npy file (see writeNpy: bf16 is widened to '<f4'). */
export async function writeNpyFile(path: string, a: NdArray): Promise<void> {
  await writeFile(path, writeNpy(a));
}

/** Reads a safetensors file: its arrays by name and its `__metadata__` (see parseSafetensors). */
export async function readSafetensorsFile(path: string): Promise<ReturnType<typeof parseSafetensors>> {
  return parseSafetensors(await readBytes(path), { path });
}

/** Writes named arrays, in the order given, and optional string metadata as a safetensors file. */
export async function writeSafetensorsFile(path: string, tensors: Iterable<[string, NdArray]> | Record<string, NdArray>, metadata?: Record<string, string>): Promise<void> {
  await writeFile(path, writeSafetensors(tensors, metadata));
}

/** Natural order: "attentions.2" < "attentions.10". */
export function naturalCompare(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}

/**
 * Reads the arrays of one file: .npy → one array; .npz/.safetensors → all (natural key order), or
 * only `keys`.
 */
export async function readArrays(path: string, keys?: readonly string[]): Promise<NdArray[]> {
  const bytes = await readBytes(path);
  const lower = path.toLowerCase();
  let named: [string, NdArray][];
  if (lower.endsWith('.npy')) {
    if (keys) throw new ValueError(`${path}: an .npy file holds one array; "keys" does not apply`, 'keys');
    return [parseNpy(bytes, { path })];
  } else if (lower.endsWith('.npz')) named = [...parseNpz(bytes, { path })];
  else if (lower.endsWith('.safetensors')) named = [...parseSafetensors(bytes, { path }).tensors];
  else throw new FormatError(`${path}: unknown array file type (expected .npy, .npz or .safetensors)`, path);
  if (keys) {
    const m = new Map(named);
    return keys.map((k) => {
      const a = m.get(k);
      if (!a) throw new ValueError(`${path} has no array named "${k}" (has ${[...m.keys()].slice(0, 20).join(', ')})`, 'keys');
      return a;
    });
  }
  return named.sort((a, b) => naturalCompare(a[0], b[0])).map(([, a]) => a);
}

/** Splits a stacked [layers, …] array into per-layer arrays when it has `rank` = per-layer rank + 1. */
function unstack(arrays: NdArray[], perLayerRanks: readonly number[]): NdArray[] {
  if (arrays.length !== 1) return arrays;
  const a = arrays[0]!;
  if (!perLayerRanks.some((r) => a.shape.length === r + 1) || perLayerRanks.includes(a.shape.length)) return arrays;
  const L = a.shape[0]!, rest = a.shape.slice(1);
  const per = rest.reduce((x, y) => x * y, 1);
  return Array.from({ length: L }, (_, l) => ({ dtype: a.dtype, shape: rest, data: a.data.slice(l * per, (l + 1) * per) as NdArray['data'] }));
}

type Source = string | readonly string[] | { file: string; keys?: readonly string[] };

async function readSource(base: string, src: Source, argument: string): Promise<NdArray[]> {
  const at = (p: string) => (isAbsolute(p) ? p : join(base, p));
  if (typeof src === 'string') return readArrays(at(src));
  if (Array.isArray(src)) {
    const out: NdArray[] = [];
    for (const p of src) {
      if (typeof p !== 'string') throw new ValueError(`${argument} must list file paths`, argument);
      const arrs = await readArrays(at(p));
      if (arrs.length !== 1) throw new ShapeError(`${argument}: ${p} holds ${arrs.length} arrays; with a list of files each must hold one layer`, argument, 'numLayers');
      out.push(arrs[0]!);
    }
    return out;
  }
  if (src && typeof src === 'object' && typeof (src as { file?: unknown }).file === 'string') {
    const s = src as { file: string; keys?: readonly string[] };
    return readArrays(at(s.file), s.keys);
  }
  throw new ValueError(`${argument} must be a path, a list of paths, or { file, keys }`, argument);
}

/** An optional integer field of a manifest; anything else (a string "0", say) is a FormatError naming it. */
function manifestInt(v: unknown, path: string, field: string): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new FormatError(`${path}: "${field}" must be an integer, got ${JSON.stringify(v)}`, path);
  return v;
}

/** Reads a capture manifest (`capture.json`) and the arrays it names. */
export async function readCaptureManifest(path: string): Promise<Capture> {
  const base = dirname(path);
  let m: Record<string, unknown>;
  const text = (await readBytes(path)).toString('utf8');
  try {
    m = JSON.parse(text);
  } catch (e) {
    throw new FormatError(`${path}: not valid JSON: ${(e as Error).message}`, path);
  }
  if (!m || typeof m !== 'object') throw new FormatError(`${path}: the manifest must be a JSON object`, path);
  if (m.format !== undefined && m.format !== MANIFEST_FORMAT) throw new FormatError(`${path}: format is ${JSON.stringify(m.format)}, expected "${MANIFEST_FORMAT}"`, path);
  if (m.version !== undefined && m.version !== 1) throw new FormatError(`${path}: manifest version ${JSON.stringify(m.version)} is not supported (1 is)`, path);
  let tokens = m.tokens;
  if (typeof tokens === 'string') {
    try { tokens = JSON.parse(await readFile(isAbsolute(tokens) ? tokens : join(base, tokens), 'utf8')); } catch (e) { throw new FormatError(`${path}: cannot read tokens file ${tokens}: ${(e as Error).message}`, path, (e as { code?: unknown }).code ? e : undefined); }
  }
  if (m.attention === undefined) throw new ValueError(`${path}: "attention" is required`, 'attention');
  const attention = unstack(await readSource(base, m.attention as Source, 'attention'), [3, 4]);
  const init: CaptureInit = {
    tokens: tokens as string[], grid: m.grid as [number, number], imageSpan: m.imageSpan as [number, number], attention,
    batchIndex: manifestInt(m.batchIndex, path, 'batchIndex'), queryPositions: m.queryPositions as number[] | undefined,
    textPositions: m.textPositions as number[] | undefined, layerIds: m.layerIds as number[] | undefined,
    meta: (m.meta && typeof m.meta === 'object' ? Object.fromEntries(Object.entries(m.meta).map(([k, v]) => [k, String(v)])) : {}),
  };
  if (m.layerMeans !== undefined) init.layerMeans = unstack(await readSource(base, m.layerMeans as Source, 'layerMeans'), [2, 3]);
  if (m.rollout !== undefined) init.rollout = (await readSource(base, m.rollout as Source, 'rollout'))[0];
  if (m.headImportance !== undefined) { init.headImportance = (await readSource(base, m.headImportance as Source, 'headImportance'))[0]; init.headImportanceMethod = String(m.headImportanceMethod ?? 'unspecified'); }
  if (typeof m.image === 'string') init.imagePng = await readBytes(isAbsolute(m.image) ? m.image : join(base, m.image));
  if (Array.isArray(m.masks)) throw new FormatError(`${path}: "masks" must be an object of name → file, got a list`, path);
  if (m.masks && typeof m.masks === 'object') {
    const masks: Record<string, NdArray> = {};
    for (const [name, p] of Object.entries(m.masks as Record<string, Source>)) masks[name] = (await readSource(base, p, `masks.${name}`))[0]!;
    init.masks = masks;
  }
  const c = makeCapture(init);
  // The ranking's description rides beside its method (makeCapture takes the method only; as decodeCapture does).
  if (c.info.headImportance && typeof m.headImportanceDescription === 'string') c.info.headImportance = { ...c.info.headImportance, description: m.headImportanceDescription };
  return c;
}

/**
 * Reads a capture from a capture file (`.vlmcap.safetensors`), a `capture.json` manifest, or a
 * directory holding `capture.json`.
 */
export async function readCapture(path: string): Promise<Capture> {
  return (await readCaptureSource(path)).capture;
}

/**
 * readCapture, also returning the file's own bytes when `path` is a capture file (null for a manifest): what
 * `viz` embeds in its page as it is, in the file's own precision (an f16 file re-encoded as f32 doubled).
 */
export async function readCaptureSource(path: string): Promise<{ capture: Capture; bytes: Uint8Array | null }> {
  let st;
  try { st = await stat(path); } catch { throw new FormatError(`${path}: no such file or directory`, path); }
  if (st.isDirectory()) return { capture: await readCaptureManifest(join(path, 'capture.json')), bytes: null };
  if (path.toLowerCase().endsWith('.json')) return { capture: await readCaptureManifest(path), bytes: null };
  const bytes = await readBytes(path);
  return { capture: decodeCapture(bytes, { path }), bytes };
}

/** Writes a capture file (`dtype` sets the attention precision, default f32). */
export async function writeCapture(path: string, c: Capture, opts: { dtype?: CaptureDType } = {}): Promise<void> {
  await ensureDir(dirname(resolve(path)));
  await writeFile(path, encodeCapture(c, opts));
}

/**
 * Exports a capture as transformers-style arrays plus a manifest, readable by `readCapture(dir)`:
 * attention as [1, numHeads, numQueries, seqLen] per layer, in `attentions.safetensors` (keys
 * `attentions.<l>`) or `attentions/layer_<l>.npy`; the image, masks, layer means, rollout and head
 * importance alongside. Returns the written paths.
 */
export async function exportCapture(c: Capture, dir: string, opts: { format?: 'safetensors' | 'npy' } = {}): Promise<string[]> {
  const format = opts.format ?? 'safetensors';
  if (format !== 'safetensors' && format !== 'npy') throw new ValueError(`format must be 'safetensors' or 'npy', got ${JSON.stringify(format)}`, 'format');
  await ensureDir(dir);
  const { info } = c;
  const H = info.numHeads, Q = info.queryPositions.length, N = info.seqLen;
  const written: string[] = [];
  const put = async (name: string, bytes: Uint8Array) => { const p = join(dir, name); await ensureDir(dirname(p)); await writeFile(p, bytes); written.push(p); };
  const layer = (a: Float32Array, shape: number[]): NdArray => ({ dtype: 'f32', shape, data: a });
  const manifest: Record<string, unknown> = {
    format: MANIFEST_FORMAT, version: 1, tokens: info.tokens, grid: [info.grid.rows, info.grid.cols], imageSpan: info.imageSpan,
    queryPositions: info.queryPositions, textPositions: info.textPositions, layerIds: info.layerIds, batchIndex: 0, meta: info.meta,
  };
  if (format === 'safetensors') {
    await put('attentions.safetensors', writeSafetensors(c.attention.map((a, l) => [`attentions.${l}`, layer(a, [1, H, Q, N])] as [string, NdArray])));
    manifest.attention = 'attentions.safetensors';
    if (c.layerMeans) { await put('layer_means.safetensors', writeSafetensors(c.layerMeans.map((a, l) => [`layer_means.${l}`, layer(a, [N, N])] as [string, NdArray]))); manifest.layerMeans = 'layer_means.safetensors'; }
  } else {
    const names: string[] = [];
    const width = String(info.numLayers - 1).length;
    for (let l = 0; l < info.numLayers; l++) {
      const name = `attentions/layer_${String(l).padStart(Math.max(2, width), '0')}.npy`;
      await put(name, writeNpy(layer(c.attention[l]!, [1, H, Q, N])));
      names.push(name);
    }
    manifest.attention = names;
    if (c.layerMeans) { await put('layer_means.npz', writeNpz(c.layerMeans.map((a, l) => [`layer_means.${String(l).padStart(Math.max(2, width), '0')}`, layer(a, [N, N])] as [string, NdArray]))); manifest.layerMeans = 'layer_means.npz'; }
  }
  if (c.rollout) { await put('rollout.npy', writeNpy(layer(c.rollout, [Q, N]))); manifest.rollout = 'rollout.npy'; }
  if (c.headImportance) {
    await put('head_importance.npy', writeNpy(layer(c.headImportance, [info.numLayers, H])));
    manifest.headImportance = 'head_importance.npy';
    manifest.headImportanceMethod = info.headImportance?.method;
    if (info.headImportance?.description) manifest.headImportanceDescription = info.headImportance.description;
  }
  if (c.imagePng) { await put('image.png', c.imagePng); manifest.image = 'image.png'; }
  if (c.masks?.size) {
    const masks: Record<string, string> = {};
    for (const [name, m] of c.masks) { await put(`masks/${name}.npy`, writeNpy({ dtype: 'u8', shape: [info.grid.rows, info.grid.cols], data: m })); masks[name] = `masks/${name}.npy`; }
    manifest.masks = masks;
  }
  await put('capture.json', new TextEncoder().encode(JSON.stringify(manifest, null, 2) + '\n'));
  return written;
}

/** A short name for output files: the capture file or directory name without extensions. */
export function captureStem(path: string): string {
  const b = basename(resolve(path));
  return b === 'capture.json' ? basename(dirname(resolve(path))) : b.replace(/\.vlmcap\.safetensors$|\.safetensors$|\.json$/i, '') || 'capture';
}

