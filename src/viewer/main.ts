/**
 * The viewer page's script (bundled by scripts/build-viewer.mjs into one HTML file).
 *
 * Two sources answer the same API (src/viz/api.ts): the local server (`vlm-attention view`), or, when
 * the page carries an embedded capture (`vlm-attention viz` output), `handleApi` in-page. State lives
 * in the DOM for tests and links: #stage has data-state (loading|ready|error), data-view
 * (token|patch), data-mode, data-tokens, data-argmax ("row,col"), data-argmax-index, data-patch and
 * data-patch-argmax (the sequence position of the token that attends most to the clicked patch).
 * Deep links: ?tokens=5,7&mode=rollout&layer=3&head=all&patch=12 (or the same after #).
 */
import { handleApi } from '../viz/api.js';
import { type Capture, type CaptureInfo, decodeCapture } from '../viz/capture-file.js';
import { type ColormapName, colormapLut } from '../viz/colormap.js';
import { overlayMap } from '../viz/maps.js';
import { decodePng, type RgbaImage } from '../viz/png.js';

interface Available { rollout: boolean; flow: boolean; patchFlow: boolean; rolloutHeadSubsets: boolean; storedHeadImportance: boolean }
interface MapJson { rows: number; cols: number; values: number[]; argmax: { index: number; row: number; col: number }; min: number; max: number; total: number; tokens: number[]; mode: string }
interface PatchJson { patch: { index: number; row: number; col: number; position: number }; positions: number[]; tokens: string[]; values: number[]; argmax: number; mode: string }
interface HeadsJson { numLayers: number; numHeads: number; scores: number[]; method: string; description: string }

class ApiError extends Error {
  constructor(readonly status: number, message: string) { super(message); }
}

interface Source {
  kind: 'server' | 'embedded' | 'file';
  get<T>(path: string, params?: Record<string, string>): Promise<T>;
  image(): Promise<Uint8Array | null>;
  open(bytes: Uint8Array): Promise<void>;
}

class LocalSource implements Source {
  constructor(public kind: 'embedded' | 'file', private capture: Capture) {}
  async get<T>(path: string, params: Record<string, string> = {}): Promise<T> {
    const r = handleApi(this.capture, 'GET', path, new URLSearchParams(params));
    const body = JSON.parse(r.body as string);
    if (r.status >= 400) throw new ApiError(r.status, `${body.error}: ${body.message}`);
    return body as T;
  }
  async image(): Promise<Uint8Array | null> { return this.capture.imagePng ?? null; }
  async open(bytes: Uint8Array): Promise<void> { this.capture = decodeCapture(bytes, { path: 'file' }); this.kind = 'file'; }
}

class HttpSource implements Source {
  kind = 'server' as const;
  async get<T>(path: string, params: Record<string, string> = {}): Promise<T> {
    const q = new URLSearchParams(params).toString();
    const res = await fetch(`${path}${q ? `?${q}` : ''}`);
    const body = await res.json().catch(() => ({ error: 'Error', message: `HTTP ${res.status}` }));
    if (!res.ok) throw new ApiError(res.status, `${body.error}: ${body.message}`);
    return body as T;
  }
  async image(): Promise<Uint8Array | null> {
    const res = await fetch('/api/image');
    return res.ok ? new Uint8Array(await res.arrayBuffer()) : null;
  }
  async open(bytes: Uint8Array): Promise<void> {
    const res = await fetch('/api/capture', { method: 'POST', body: new Uint8Array(bytes), headers: { 'Content-Type': 'application/octet-stream' } });
    if (!res.ok) {
      const body = await res.json().catch(() => ({ error: 'Error', message: `HTTP ${res.status}` }));
      throw new ApiError(res.status, `${body.error}: ${body.message}`);
    }
  }
}

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const stage = $<HTMLDivElement>('stage');
const canvas = $<HTMLCanvasElement>('canvas');
const caption = $<HTMLDivElement>('caption');
const errorBox = $<HTMLDivElement>('error');
const tokensBox = $<HTMLDivElement>('tokens');
const headsBox = $<HTMLDivElement>('heads');
const layerSel = $<HTMLSelectElement>('layer');
const headSel = $<HTMLSelectElement>('head');
const cmapSel = $<HTMLSelectElement>('colormap');
const alphaIn = $<HTMLInputElement>('alpha');

const state = {
  source: null as Source | null,
  info: null as CaptureInfo | null,
  available: null as Available | null,
  image: null as RgbaImage | null,
  view: 'token' as 'token' | 'patch',
  tokens: '' as string,
  patch: '' as string,
  mode: 'raw',
  layer: 'all',
  head: 'all',
  colormap: 'inferno' as ColormapName,
  lastMap: null as MapJson | null,
  /** Why the page changed what a link or the previous capture asked for (shown once, above the map). */
  notes: [] as string[],
  seq: 0,
};

function showError(msg: string | null): void {
  if (msg) { errorBox.textContent = msg; errorBox.hidden = false; } else { errorBox.textContent = ''; errorBox.hidden = true; }
}

function escapeText(s: string): string {
  return s === '' ? '␣' : s.replace(/\n/g, '⏎').replace(/ /g, '·');
}

function params(): Record<string, string> {
  const isStack = state.mode !== 'raw';
  const layers = state.layer === 'all' ? 'all' : isStack ? `0-${state.layer}` : state.layer;
  return { layers, heads: state.head, mode: state.mode };
}

function baseImage(rows: number, cols: number): RgbaImage {
  if (state.image) return state.image;
  const cell = 24, w = cols * cell, h = rows * cell;
  const data = new Uint8Array(w * h * 4);
  for (let i = 0; i < w * h; i++) { data[i * 4] = data[i * 4 + 1] = data[i * 4 + 2] = 40; data[i * 4 + 3] = 255; }
  return { width: w, height: h, data };
}

function put(img: RgbaImage): void {
  canvas.width = img.width;
  canvas.height = img.height;
  const ctx = canvas.getContext('2d')!;
  ctx.putImageData(new ImageData(new Uint8ClampedArray(img.data), img.width, img.height), 0, 0);
}

function outlinePatch(row: number, col: number, rows: number, cols: number, color: string): void {
  const ctx = canvas.getContext('2d')!;
  const pw = canvas.width / cols, ph = canvas.height / rows;
  ctx.strokeStyle = color;
  ctx.lineWidth = Math.max(1.5, canvas.width / 250);
  ctx.strokeRect(col * pw + 1, row * ph + 1, pw - 2, ph - 2);
}

function drawLegend(): void {
  const c = $<HTMLCanvasElement>('legend-bar');
  const ctx = c.getContext('2d')!;
  const lut = colormapLut(state.colormap);
  for (let i = 0; i < 256; i++) { ctx.fillStyle = `rgb(${lut[i * 3]},${lut[i * 3 + 1]},${lut[i * 3 + 2]})`; ctx.fillRect(i, 0, 1, 10); }
}

function tokenLabel(pos: number): string {
  return `“${escapeText(state.info!.tokens[pos] ?? '?')}” (position ${pos})`;
}

/** Draws a token map (the last one fetched): recolouring for a new colormap or opacity needs no new request. */
function drawTokenMap(m: MapJson): void {
  const { rows, cols } = state.info!.grid;
  const img = overlayMap(baseImage(rows, cols), m.values, cols, rows, {
    colormap: state.colormap, alpha: state.image ? Number(alphaIn.value) / 100 : 1, weightByValue: !!state.image,
  });
  put(img);
  outlinePatch(m.argmax.row, m.argmax.col, rows, cols, '#4cc2ff');
}

/** Clears what describes the map on screen (after a failed request nothing shown may belong to the old one). */
function clearShown(): void {
  const info = state.info;
  if (info) put(baseImage(info.grid.rows, info.grid.cols));
  state.lastMap = null;
  caption.innerHTML = '';
  for (const k of ['tokens', 'argmax', 'argmaxIndex', 'patch', 'patchArgmax']) delete stage.dataset[k];
}

/**
 * Keeps the selection to what this capture offers: a mode it can compute, a layer and a head it has, and for
 * rollout and flow a head subset only where it stores every query row. Anything changed is noted for the caption.
 */
function normaliseSelection(): void {
  const info = state.info!, av = state.available!;
  const modeOk = (m: string) => m === 'raw' || (m === 'rollout' && av.rollout) || (m === 'flow' && av.flow);
  if (!modeOk(state.mode)) {
    state.notes.push(`mode ${state.mode} is not available for this capture: showing raw`);
    state.mode = 'raw';
  }
  const inRange = (v: string, n: number) => v === 'all' || (/^\d+$/.test(v) && Number(v) < n);
  if (!inRange(state.layer, info.numLayers)) { state.notes.push(`layer ${state.layer} is not in this capture (0–${info.numLayers - 1}): showing all layers`); state.layer = 'all'; }
  if (!inRange(state.head, info.numHeads)) { state.notes.push(`head ${state.head} is not in this capture (0–${info.numHeads - 1}): showing all heads`); state.head = 'all'; }
  if (state.mode !== 'raw' && state.head !== 'all' && !av.rolloutHeadSubsets) {
    state.notes.push(`${state.mode} over one head needs every query row stored: showing all heads`);
    state.head = 'all';
  }
  syncControls();
}

/** The controls show the selection: mode radios, layer and head selectors (head disabled where it cannot apply). */
function syncControls(): void {
  const av = state.available;
  if (!av) return;
  for (const r of document.querySelectorAll<HTMLInputElement>('input[name="mode"]')) {
    r.disabled = (r.value === 'rollout' && !av.rollout) || (r.value === 'flow' && !av.flow);
    r.checked = r.value === state.mode;
  }
  layerSel.value = state.layer;
  headSel.value = state.head;
  headSel.disabled = state.mode !== 'raw' && !av.rolloutHeadSubsets;
  headSel.title = headSel.disabled ? `${state.mode} over one head needs a capture with every query row` : '';
  markHead();
}

function takeNotes(): string | null {
  const n = state.notes.length ? `${state.notes.join('; ')}.` : null;
  state.notes = [];
  return n;
}

async function refresh(): Promise<void> {
  const src = state.source, info = state.info;
  if (!src || !info) return;
  const seq = ++state.seq;
  stage.dataset.state = 'loading';
  stage.dataset.view = state.view;
  stage.dataset.mode = state.mode;
  const { rows, cols } = info.grid;
  try {
    if (state.view === 'token') {
      const m = await src.get<MapJson>('/api/map', { tokens: state.tokens, ...params() });
      if (seq !== state.seq) return;
      state.lastMap = m;
      drawTokenMap(m);
      stage.dataset.tokens = m.tokens.join(',');
      stage.dataset.argmax = `${m.argmax.row},${m.argmax.col}`;
      stage.dataset.argmaxIndex = String(m.argmax.index);
      delete stage.dataset.patch;
      delete stage.dataset.patchArgmax;
      for (const el of tokensBox.querySelectorAll<HTMLElement>('.tok')) {
        el.classList.toggle('selected', m.tokens.includes(Number(el.dataset.position)));
        el.classList.remove('argmax');
        el.style.background = '';
        el.style.color = '';
        el.title = `position ${el.dataset.position}`;
      }
      caption.innerHTML = '';
      caption.append(
        b(m.tokens.map(tokenLabel).join(' + ')), ` → hottest patch row ${m.argmax.row}, col ${m.argmax.col}`,
        ` · image mass ${m.total.toFixed(3)} · ${state.mode}, ${state.layer === 'all' ? 'all layers' : state.mode === 'raw' ? `layer ${state.layer}` : `layers 0–${state.layer}`}, ${state.head === 'all' ? 'all heads' : `head ${state.head}`}`,
      );
    } else {
      // A patch's flow takes a flow row per text token: where that is past the server's work limit, rollout stands in.
      const fallback = state.mode === 'flow' && !state.available!.patchFlow;
      const pp = params();
      if (fallback) pp.mode = state.available!.rollout ? 'rollout' : 'raw';
      const pm = await src.get<PatchJson>('/api/patch', { patch: state.patch, ...pp });
      if (seq !== state.seq) return;
      const base = baseImage(rows, cols);
      put(base);
      state.lastMap = null;
      outlinePatch(pm.patch.row, pm.patch.col, rows, cols, '#ffd34d');
      delete stage.dataset.tokens;
      delete stage.dataset.argmax;
      delete stage.dataset.argmaxIndex;
      stage.dataset.patch = String(pm.patch.index);
      stage.dataset.patchArgmax = String(pm.argmax);
      const lut = colormapLut(state.colormap);
      let hi = 0;
      for (const v of pm.values) hi = Math.max(hi, v);
      const byPos = new Map(pm.positions.map((p, i) => [p, pm.values[i]!]));
      for (const el of tokensBox.querySelectorAll<HTMLElement>('.tok')) {
        const v = byPos.get(Number(el.dataset.position)) ?? 0;
        const k = Math.round((hi > 0 ? v / hi : 0) * 255) * 3;
        el.style.background = `rgb(${lut[k]},${lut[k + 1]},${lut[k + 2]})`;
        el.style.color = k > 150 * 3 ? '#000' : '#fff';
        el.classList.remove('selected');
        el.classList.toggle('argmax', Number(el.dataset.position) === pm.argmax);
        el.title = `attention to patch (${pm.patch.row}, ${pm.patch.col}): ${v.toFixed(4)}`;
      }
      caption.innerHTML = '';
      caption.append(`patch row ${pm.patch.row}, col ${pm.patch.col} (position ${pm.patch.position}) is attended most by `, b(tokenLabel(pm.argmax)), ` · ${fallback ? `${pp.mode} (flow to a patch is too much work for this capture)` : state.mode}`);
    }
    // What the page changed of the link's or the last capture's selection is said once, above the map.
    showError(takeNotes());
    stage.dataset.state = 'ready';
  } catch (e) {
    if (seq !== state.seq) return;
    clearShown();
    showError((e as Error).message);
    stage.dataset.state = 'error';
  }
}

function b(text: string): HTMLElement {
  const el = document.createElement('b');
  el.textContent = text;
  return el;
}

function buildControls(): void {
  const info = state.info!;
  layerSel.innerHTML = '';
  const opt = (sel: HTMLSelectElement, value: string, text: string) => { const o = document.createElement('option'); o.value = value; o.textContent = text; sel.append(o); };
  opt(layerSel, 'all', 'all');
  for (let l = 0; l < info.numLayers; l++) opt(layerSel, String(l), `${l}${info.layerIds[l] !== l ? ` (model layer ${info.layerIds[l]})` : ''}`);
  headSel.innerHTML = '';
  opt(headSel, 'all', 'all');
  for (let h = 0; h < info.numHeads; h++) opt(headSel, String(h), String(h));
  normaliseSelection();
  tokensBox.innerHTML = '';
  for (const p of info.textPositions) {
    const el = document.createElement('button');
    el.className = 'tok';
    el.dataset.position = String(p);
    el.textContent = escapeText(info.tokens[p] ?? '');
    el.title = `position ${p}`;
    el.addEventListener('click', (ev) => {
      const cur = state.view === 'token' ? state.tokens.split(',').filter((x) => x !== '') : [];
      state.tokens = ev.shiftKey ? [...new Set([...cur, String(p)])].join(',') : String(p);
      state.view = 'token';
      void refresh();
    });
    tokensBox.append(el);
  }
  const m = info.meta;
  $<HTMLDivElement>('meta').textContent = [m.model, m.prompt ? `“${m.prompt}”` : '', `${info.numLayers} layers × ${info.numHeads} heads`, `${info.seqLen} tokens`, `grid ${info.grid.rows}×${info.grid.cols}`, state.source!.kind].filter(Boolean).join(' · ');
}

async function buildHeads(): Promise<void> {
  const h = await state.source!.get<HeadsJson>('/api/heads');
  $<HTMLElement>('heads-method').textContent = `(${h.method}: ${h.description})`;
  headsBox.innerHTML = '';
  headsBox.style.gridTemplateColumns = `24px repeat(${h.numHeads}, 16px)`;
  const lut = colormapLut('viridis');
  let lo = Infinity, hi = -Infinity;
  for (const v of h.scores) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  const axis = (t: string) => { const d = document.createElement('div'); d.className = 'axis'; d.textContent = t; headsBox.append(d); };
  axis('');
  for (let j = 0; j < h.numHeads; j++) axis(j % Math.ceil(h.numHeads / 16) === 0 ? String(j) : '');
  for (let l = 0; l < h.numLayers; l++) {
    axis(String(l));
    for (let j = 0; j < h.numHeads; j++) {
      const v = h.scores[l * h.numHeads + j]!;
      const k = Math.round((hi > lo ? (v - lo) / (hi - lo) : 0.5) * 255) * 3;
      const cell = document.createElement('button');
      cell.className = 'cell';
      cell.dataset.layer = String(l);
      cell.dataset.head = String(j);
      cell.style.background = `rgb(${lut[k]},${lut[k + 1]},${lut[k + 2]})`;
      cell.title = `layer ${l}, head ${j}: ${v.toPrecision(4)}`;
      cell.addEventListener('click', () => {
        state.layer = String(l); state.head = String(j); state.mode = 'raw';
        syncControls();
        void refresh();
      });
      headsBox.append(cell);
    }
  }
  markHead();
}

function markHead(): void {
  for (const c of headsBox.querySelectorAll<HTMLElement>('.cell')) c.classList.toggle('selected', c.dataset.layer === state.layer && c.dataset.head === state.head);
}

async function load(): Promise<void> {
  const src = state.source!;
  stage.dataset.state = 'loading';
  const { info, available } = await src.get<{ info: CaptureInfo; available: Available }>('/api/info');
  state.info = info;
  state.available = available;
  const png = await src.image();
  state.image = png ? decodePng(png) : null;
  put(baseImage(info.grid.rows, info.grid.cols));
  if (!state.tokens) state.tokens = String(info.textPositions[info.textPositions.length - 1] ?? info.queryPositions[info.queryPositions.length - 1]);
  buildControls();
  await buildHeads();
  drawLegend();
  await refresh();
}

function readLinkParams(): void {
  const merged = new URLSearchParams(location.search);
  for (const [k, v] of new URLSearchParams(location.hash.replace(/^#/, ''))) merged.set(k, v);
  if (merged.has('tokens')) state.tokens = merged.get('tokens')!;
  if (merged.has('patch')) { state.patch = merged.get('patch')!; state.view = 'patch'; }
  if (merged.has('mode')) state.mode = merged.get('mode')!;
  if (merged.has('layer')) state.layer = merged.get('layer')!;
  if (merged.has('head')) state.head = merged.get('head')!;
  const cm = merged.get('colormap');
  if (cm === 'inferno' || cm === 'magma' || cm === 'viridis') { state.colormap = cm; cmapSel.value = cm; }
}

function base64ToBytes(b64: string): Uint8Array {
  const s = atob(b64.replace(/\s+/g, ''));
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

function wire(): void {
  for (const r of document.querySelectorAll<HTMLInputElement>('input[name="mode"]')) {
    r.addEventListener('change', () => { if (r.checked) { state.mode = r.value; normaliseSelection(); void refresh(); } });
  }
  layerSel.addEventListener('change', () => { state.layer = layerSel.value; markHead(); void refresh(); });
  headSel.addEventListener('change', () => { state.head = headSel.value; markHead(); void refresh(); });
  // Colour and opacity recolour the map on screen; only the patch view (token colours) redraws from the API.
  const recolour = () => {
    if (state.view === 'token' && state.lastMap && stage.dataset.state === 'ready') drawTokenMap(state.lastMap);
    else if (state.view === 'patch') void refresh();
  };
  cmapSel.addEventListener('change', () => { state.colormap = cmapSel.value as ColormapName; drawLegend(); recolour(); });
  alphaIn.addEventListener('input', () => { if (state.view === 'token') recolour(); });
  // Editing the link of an open page (the offline file reads its parameters after #) shows what it asks for.
  window.addEventListener('hashchange', () => {
    if (!state.info) return;
    readLinkParams();
    normaliseSelection();
    void refresh();
  });
  canvas.addEventListener('click', (ev) => {
    const info = state.info;
    if (!info) return;
    const rect = canvas.getBoundingClientRect();
    const col = Math.min(info.grid.cols - 1, Math.max(0, Math.floor(((ev.clientX - rect.left) / rect.width) * info.grid.cols)));
    const row = Math.min(info.grid.rows - 1, Math.max(0, Math.floor(((ev.clientY - rect.top) / rect.height) * info.grid.rows)));
    state.patch = String(row * info.grid.cols + col);
    state.view = 'patch';
    void refresh();
  });
  $<HTMLInputElement>('file').addEventListener('change', async (ev) => {
    const f = (ev.target as HTMLInputElement).files?.[0];
    if (!f || !state.source) return;
    try {
      await state.source.open(new Uint8Array(await f.arrayBuffer()));
      state.tokens = ''; state.view = 'token'; state.layer = 'all'; state.head = 'all';
      await load();
    } catch (e) {
      const err = e as Error;
      showError(`could not open ${f.name}: ${err instanceof ApiError ? err.message : `${err.name}: ${err.message}`}`);
      stage.dataset.state = 'error';
    }
  });
}

async function main(): Promise<void> {
  wire();
  readLinkParams();
  const embedded = document.getElementById('vlm-capture');
  try {
    if (embedded?.textContent) state.source = new LocalSource('embedded', decodeCapture(base64ToBytes(embedded.textContent), { path: 'embedded capture' }));
    else if (location.protocol.startsWith('http')) state.source = new HttpSource();
    else {
      showError('No capture in this page: use “Open capture…”, or run `vlm-attention view <capture>`.');
      stage.dataset.state = 'error';
      state.source = new LocalSource('file', null as unknown as Capture);
      return;
    }
    await load();
  } catch (e) {
    showError((e as Error).message);
    stage.dataset.state = 'error';
  }
}

void main();
