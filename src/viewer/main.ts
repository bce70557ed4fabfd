/**
 * The viewer page's script (bundled by scripts/build-viewer.mjs into one HTML file).
 *
 * Two sources answer the same API (src/viz/api.ts): the local server (`vlm-attention view`), or, when
 * the page carries an embedded capture (`vlm-attention viz` output), `handleApi` in-page. State lives
 * in the DOM for tests and links: #stage has data-state (loading|ready|error), data-view
 * (token|patch), data-mode, data-tokens, data-argmax ("row,col"), data-argmax-index, data-patch,
 * data-patch-argmax (the sequence position of the token that attends most to the clicked patch) and, when
 * served, data-generation (which of the server's captures the page shows).
 *
 * Deep links: ?tokens=5,7&mode=rollout&layer=3&head=all&patch=12&colormap=magma&opacity=40 (or the same after #). A
 * link says the whole view: what it leaves out is the default (token view of the last text token, raw, all layers,
 * all heads, inferno, opacity 75), whether the page is loaded with it or its hash is edited in an open page; and every change
 * made on the page rewrites the hash (history.replaceState), so a copied URL opens the view on screen.
 *
 * Served, the page sends the capture generation it loaded with every request; when another tab has uploaded a
 * capture the server answers 409 and the page reloads the capture's info and says so, instead of labelling the
 * new capture's maps with the old one's tokens.
 */
import { handleApi } from '../viz/api.js';
import { type Capture, type CaptureInfo, decodeCapture } from '../viz/capture-file.js';
import { type ColormapName, colormapLut } from '../viz/colormap.js';
import { overlayMap } from '../viz/maps.js';
import { decodePng, type RgbaImage } from '../viz/png.js';

interface Available { rollout: boolean; flow: boolean; patchFlow: boolean; rolloutHeadSubsets: boolean; storedHeadImportance: boolean }
interface InfoJson { info: CaptureInfo; available: Available; generation?: string }
interface MapJson { rows: number; cols: number; values: number[]; argmax: { index: number; row: number; col: number }; min: number; max: number; total: number; tokens: number[]; mode: string }
interface PatchJson { patch: { index: number; row: number; col: number; position: number }; positions: number[]; tokens: string[]; values: number[]; argmax: number; mode: string }
/** Scores are numbers, but a non-finite one arrives as null (JSON has no Infinity). */
interface HeadsJson { numLayers: number; numHeads: number; scores: (number | null)[]; method: string; description: string }

class ApiError extends Error {
  constructor(readonly status: number, message: string) { super(message); }
}

/** The server now holds another capture than the one this page loaded (an upload from another tab). */
class CaptureChanged extends Error {}

/** The header of src/viz/server.ts that names a capture generation. */
const GENERATION_HEADER = 'X-Capture-Generation';

interface Source {
  kind: 'server' | 'embedded' | 'file';
  /** The capture's generation on the server (null for an in-page capture). */
  readonly generation: string | null;
  info(): Promise<InfoJson>;
  get<T>(path: string, params?: Record<string, string>): Promise<T>;
  image(): Promise<Uint8Array | null>;
  open(bytes: Uint8Array): Promise<void>;
}

class LocalSource implements Source {
  readonly generation = null;
  constructor(public kind: 'embedded' | 'file', private capture: Capture) {}
  info(): Promise<InfoJson> { return this.get<InfoJson>('/api/info'); }
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
  generation: string | null = null;

  /** fetch, with a network failure (the server stopped) said in words instead of "Failed to fetch". */
  private async request(path: string, init: RequestInit = {}): Promise<Response> {
    try {
      return await fetch(path, init);
    } catch {
      throw new ApiError(0, `The viewer server at ${location.host} is not answering: it has probably been stopped. Start it again (\`vlm-attention view <capture>\`) and reload this page.`);
    }
  }

  /** Requests say which capture they are for; the server refuses (409) those for a capture it no longer holds. */
  private headers(): Record<string, string> {
    return this.generation === null ? {} : { [GENERATION_HEADER]: this.generation };
  }

  private check(res: Response): void {
    const g = res.headers.get(GENERATION_HEADER);
    if (res.status === 409 || (this.generation !== null && g !== null && g !== this.generation)) throw new CaptureChanged();
  }

  private async fail(res: Response): Promise<never> {
    const body = await res.json().catch(() => ({ error: 'Error', message: `HTTP ${res.status}` }));
    throw new ApiError(res.status, `${body.error}: ${body.message}`);
  }

  /** The generation this page's own upload got: the info that follows must be of that capture. */
  private uploaded: string | null = null;

  /**
   * The capture's info; sent without a generation, as it is what tells the page the current one. After this page's
   * own upload, an info of another capture (another client uploaded in between) is CaptureChanged, so that the page
   * says why it does not show the file just opened.
   */
  async info(): Promise<InfoJson> {
    const res = await this.request('/api/info');
    if (!res.ok) return this.fail(res);
    const body = await res.json() as InfoJson;
    const g = body.generation ?? res.headers.get(GENERATION_HEADER);
    this.generation = g === null || g === undefined ? null : String(g);
    const expected = this.uploaded;
    this.uploaded = null;
    if (expected !== null && this.generation !== expected) throw new CaptureChanged();
    return body;
  }

  async get<T>(path: string, params: Record<string, string> = {}): Promise<T> {
    const q = new URLSearchParams(params).toString();
    const res = await this.request(`${path}${q ? `?${q}` : ''}`, { headers: this.headers() });
    this.check(res);
    if (!res.ok) return this.fail(res);
    return await res.json() as T;
  }

  async image(): Promise<Uint8Array | null> {
    const res = await this.request('/api/image', { headers: this.headers() });
    this.check(res);
    return res.ok ? new Uint8Array(await res.arrayBuffer()) : null;
  }

  async open(bytes: Uint8Array): Promise<void> {
    const res = await this.request('/api/capture', { method: 'POST', body: new Uint8Array(bytes), headers: { 'Content-Type': 'application/octet-stream' } });
    if (!res.ok) return this.fail(res);
    // The page loads the new capture's info next, which sets the generation and checks it is this upload's.
    const body = await res.json().catch(() => ({})) as { generation?: unknown };
    this.uploaded = body.generation === undefined || body.generation === null ? null : String(body.generation);
    this.generation = null;
  }
}

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const stage = $<HTMLDivElement>('stage');
const canvas = $<HTMLCanvasElement>('canvas');
// Read back after every draw (the keyboard cursor is drawn over a saved frame): a CPU-backed canvas suits that.
canvas.getContext('2d', { willReadFrequently: true });
const caption = $<HTMLDivElement>('caption');
const errorBox = $<HTMLDivElement>('error');
const cursorStatus = $<HTMLDivElement>('cursor-status');
const tokensBox = $<HTMLDivElement>('tokens');
const headsBox = $<HTMLDivElement>('heads');
const layerSel = $<HTMLSelectElement>('layer');
const headSel = $<HTMLSelectElement>('head');
const cmapSel = $<HTMLSelectElement>('colormap');
const alphaIn = $<HTMLInputElement>('alpha');

/** What a link that does not mention a parameter means (also where an edited link starts from). */
const DEFAULTS = { view: 'token' as 'token' | 'patch', tokens: '', patch: '', mode: 'raw', layer: 'all', head: 'all', colormap: 'inferno' as ColormapName, opacity: alphaIn.defaultValue || '75' };

const state = {
  source: null as Source | null,
  info: null as CaptureInfo | null,
  available: null as Available | null,
  image: null as RgbaImage | null,
  ...DEFAULTS,
  lastMap: null as MapJson | null,
  /** The drawn picture without the keyboard cursor, to redraw the cursor over. */
  frame: null as ImageData | null,
  /** The keyboard's patch cursor on the canvas. */
  cursor: null as { row: number; col: number } | null,
  /** Why the page changed what a link or the previous capture asked for (shown once, above the map). */
  notes: [] as string[],
  seq: 0,
  reloading: false,
  /** Another 409 came while a reload was in flight: that reload's capture is stale too, so it runs again. */
  reloadAgain: false,
};

function showError(msg: string | null): void {
  if (msg) { errorBox.textContent = msg; errorBox.hidden = false; } else { errorBox.textContent = ''; errorBox.hidden = true; }
}

/** Bidirectional controls (LRM, RLO, isolates…): shown as code points, since inside a token they reorder its text. */
const BIDI_CONTROLS = /[\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]/g;

const codePoint = (c: string) => `⟨U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}⟩`;

/** Text that draws nothing (zero-width and format characters, other spaces): a token of only these was a blank button. */
const INVISIBLE = /^[\p{Cf}\p{Zs}\p{Cc}\u3164\u115F\u1160\uFFA0]+$/u;

function escapeText(s: string): string {
  if (s === '') return '␣';
  const shown = s.replace(/\n/g, '⏎').replace(/ /g, '·').replace(BIDI_CONTROLS, codePoint);
  return INVISIBLE.test(shown) ? [...shown].map(codePoint).join('') : shown;
}

/** Text outside tokens (model name, prompt): its bidi controls shown as code points too, as in tokens. */
function escapeBidi(s: string): string {
  return s.replace(BIDI_CONTROLS, codePoint);
}

/**
 * At most `n` characters (a 3,000-character token in a caption pushed everything else off screen), counted in code
 * points: cutting UTF-16 units could split an emoji's surrogate pair and show "�".
 */
function shorten(s: string, n = 60): string {
  if (s.length <= n) return s;
  const cps = [...s];
  return cps.length > n ? `${cps.slice(0, n - 1).join('')}…` : s;
}

/** A number for a caption: 4 significant digits (7.388e+37 rather than 7.388266310861363e+37). */
function fmtNumber(v: number): string {
  return Math.abs(v) >= 1e6 || (v !== 0 && Math.abs(v) < 1e-3) ? v.toPrecision(4) : v.toFixed(3);
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
  // The stylesheet sizes the canvas to fit the window's height too (a tall, narrow image was thousands of pixels high).
  canvas.style.setProperty('--ar', String(img.width / img.height));
  const ctx = canvas.getContext('2d')!;
  ctx.putImageData(new ImageData(new Uint8ClampedArray(img.data), img.width, img.height), 0, 0);
}

function outlinePatch(row: number, col: number, rows: number, cols: number, color: string, dash: number[] = []): void {
  const ctx = canvas.getContext('2d')!;
  const pw = canvas.width / cols, ph = canvas.height / rows;
  ctx.save();
  ctx.strokeStyle = color;
  ctx.setLineDash(dash);
  ctx.lineWidth = Math.max(1.5, canvas.width / 250);
  ctx.strokeRect(col * pw + 1, row * ph + 1, pw - 2, ph - 2);
  ctx.restore();
}

/** Keeps what was drawn (for redrawing the keyboard cursor over it), then draws the cursor. */
function finishFrame(): void {
  state.frame = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height);
  drawCursor();
}

/** The keyboard's patch cursor, shown while the canvas has focus. */
function drawCursor(): void {
  const info = state.info;
  if (!state.frame || !info) return;
  canvas.getContext('2d')!.putImageData(state.frame, 0, 0);
  if (state.cursor && document.activeElement === canvas) {
    const { row, col } = state.cursor;
    outlinePatch(row, col, info.grid.rows, info.grid.cols, '#000', []);
    outlinePatch(row, col, info.grid.rows, info.grid.cols, '#fff', [4, 3]);
  }
}

const KEYS_HELP = 'Arrow keys move a patch cursor; Enter shows which tokens attend to that patch.';

function describeCanvas(text: string): void {
  canvas.setAttribute('aria-label', `${text} ${KEYS_HELP}`);
}

function drawLegend(): void {
  const c = $<HTMLCanvasElement>('legend-bar');
  const ctx = c.getContext('2d')!;
  const lut = colormapLut(state.colormap);
  for (let i = 0; i < 256; i++) { ctx.fillStyle = `rgb(${lut[i * 3]},${lut[i * 3 + 1]},${lut[i * 3 + 2]})`; ctx.fillRect(i, 0, 1, 10); }
}

function tokenText(pos: number): string {
  return escapeText(state.info!.tokens[pos] ?? '?');
}

/** “token” (position p), for text (aria labels). */
function tokenLabel(pos: number): string {
  return `“${shorten(tokenText(pos))}” (position ${pos})`;
}

/** “token” (position p) in bold, the token isolated so that its direction cannot reorder the caption. */
function tokenLabelEl(pos: number): HTMLElement {
  const el = document.createElement('b');
  const t = document.createElement('bdi');
  t.textContent = shorten(tokenText(pos));
  el.append('“', t, `” (position ${pos})`);
  return el;
}

function selectionText(): string {
  return `${state.mode}, ${state.layer === 'all' ? 'all layers' : state.mode === 'raw' ? `layer ${state.layer}` : `layers 0–${state.layer}`}, ${state.head === 'all' ? 'all heads' : `head ${state.head}`}`;
}

/** Draws a token map (the last one fetched): recolouring for a new colormap or opacity needs no new request. */
function drawTokenMap(m: MapJson): void {
  const { rows, cols } = state.info!.grid;
  const img = overlayMap(baseImage(rows, cols), m.values, cols, rows, {
    colormap: state.colormap, alpha: state.image ? Number(state.opacity) / 100 : 1, weightByValue: !!state.image,
  });
  put(img);
  // An all-zero map has no hottest patch (its argmax is only the first of equals).
  if (m.max > 0) outlinePatch(m.argmax.row, m.argmax.col, rows, cols, '#4cc2ff');
  finishFrame();
}

/** Clears what describes the map on screen (after a failed request nothing shown may belong to the old one). */
function clearShown(): void {
  const info = state.info;
  if (info) { put(baseImage(info.grid.rows, info.grid.cols)); finishFrame(); }
  state.lastMap = null;
  caption.innerHTML = '';
  describeCanvas('The image; no map is shown.');
  for (const k of ['tokens', 'argmax', 'argmaxIndex', 'patch', 'patchArgmax']) delete stage.dataset[k];
}

/**
 * Keeps the selection to what this capture offers: a mode it can compute, a layer and a head it has, and for
 * rollout and flow a head subset only where it stores every query row. Anything changed is noted for the caption.
 */
function normaliseSelection(): void {
  const info = state.info!, av = state.available!;
  const modeOk = (m: string) => m === 'raw' || (m === 'rollout' && av.rollout) || (m === 'flow' && av.flow);
  if (!['raw', 'rollout', 'flow'].includes(state.mode)) {
    state.notes.push(`mode ${JSON.stringify(shorten(state.mode, 20))} is not a mode (raw, rollout or flow): showing raw`);
    state.mode = 'raw';
  } else if (!modeOk(state.mode)) {
    state.notes.push(`mode ${state.mode} is not available for this capture: showing raw`);
    state.mode = 'raw';
  }
  // layer=03 means layer 3: written as the selectors and the head grid name it, or they would show nothing selected.
  const canonical = (v: string) => (/^\d+$/.test(v) && v.length < 10 ? String(Number(v)) : v);
  state.layer = canonical(state.layer);
  state.head = canonical(state.head);
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
  cmapSel.value = state.colormap;
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

/** The link of the view on screen: only what differs from DEFAULTS, so that it reads as the view does. */
function linkOf(): string {
  const q = new URLSearchParams();
  if (state.view === 'patch') q.set('patch', state.patch); else q.set('tokens', state.tokens);
  if (state.mode !== DEFAULTS.mode) q.set('mode', state.mode);
  if (state.layer !== DEFAULTS.layer) q.set('layer', state.layer);
  if (state.head !== DEFAULTS.head) q.set('head', state.head);
  if (state.colormap !== DEFAULTS.colormap) q.set('colormap', state.colormap);
  if (state.opacity !== DEFAULTS.opacity) q.set('opacity', state.opacity);
  return q.toString().replace(/%2C/gi, ',');
}

/** Puts the view on screen in the URL's hash (replaceState: no history entry per click, and no hashchange). */
function writeLink(): void {
  const hash = `#${linkOf()}`;
  if (location.hash === hash && location.search === '') return;
  try {
    // The query string is dropped: its parameters would otherwise fill in what the hash leaves to the defaults.
    history.replaceState(history.state, '', `${location.pathname}${hash}`);
  } catch {
    // Some browsers refuse replaceState on file:// pages: the address then stays as it was opened.
  }
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
        const selected = m.tokens.includes(Number(el.dataset.position));
        el.classList.toggle('selected', selected);
        el.setAttribute('aria-pressed', String(selected));
        el.classList.remove('argmax');
        el.style.background = '';
        el.style.color = '';
        el.title = tokenTitle(Number(el.dataset.position));
      }
      const hottest = m.max > 0 ? `hottest patch row ${m.argmax.row}, col ${m.argmax.col}` : 'no attention on the image (every patch is 0)';
      caption.innerHTML = '';
      m.tokens.forEach((t, i) => caption.append(...(i ? [' + '] : []), tokenLabelEl(t)));
      caption.append(` → ${hottest}`, ` · image mass ${fmtNumber(m.total)} · ${selectionText()}`);
      describeCanvas(`Heatmap over the image of the attention from ${m.tokens.map(tokenLabel).join(' + ')} (${selectionText()}): ${hottest}.`);
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
      finishFrame();
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
        el.setAttribute('aria-pressed', 'false');
        el.classList.toggle('argmax', hi > 0 && Number(el.dataset.position) === pm.argmax);
        el.title = `${tokenText(Number(el.dataset.position))}: attention to patch (${pm.patch.row}, ${pm.patch.col}) ${Math.abs(v) >= 1e6 ? v.toPrecision(4) : v.toFixed(4)}`;
      }
      const how = fallback ? `${pp.mode} (flow to a patch is too much work for this capture)` : state.mode;
      const where = `patch row ${pm.patch.row}, col ${pm.patch.col} (position ${pm.patch.position})`;
      caption.innerHTML = '';
      if (hi > 0) caption.append(`${where} is attended most by `, tokenLabelEl(pm.argmax), ` · ${how}`);
      else caption.append(`${where} gets no attention from any text token · ${how}`);
      describeCanvas(`The image with ${where} outlined: ${hi > 0 ? `attended most by ${tokenLabel(pm.argmax)}` : 'no text token attends to it'}.`);
    }
    // What the page changed of the link's or the last capture's selection is said once, above the map.
    showError(takeNotes());
    stage.dataset.state = 'ready';
    writeLink();
  } catch (e) {
    if (seq !== state.seq) return;
    if (e instanceof CaptureChanged) { void captureReplaced(); return; }
    clearShown();
    // The link's other notes (a mode or layer it could not have) are said now too, not after the next click.
    showError([(e as Error).message, takeNotes()].filter(Boolean).join(' · '));
    stage.dataset.state = 'error';
  }
}

/** The token's whole text (its button shows at most a line of it) and its position. */
function tokenTitle(p: number): string {
  return `${tokenText(p)} · position ${p}`;
}

/** One tab stop in a group of many buttons (tokens, head cells): arrow keys move it (roving tabindex). */
function rove(items: Iterable<HTMLElement>, target: HTMLElement | null): void {
  for (const el of items) el.tabIndex = el === target ? 0 : -1;
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
  // Rebuilding removes the focused button: the keyboard goes back to its place (by position) rather than to <body>.
  const focused = focusedIn(tokensBox);
  tokensBox.innerHTML = '';
  const selected = new Set(state.view === 'token' ? state.tokens.split(',') : []);
  for (const p of info.textPositions) {
    const el = document.createElement('button');
    el.type = 'button';
    el.className = 'tok';
    el.dataset.position = String(p);
    el.setAttribute('aria-pressed', String(selected.has(String(p))));
    const text = document.createElement('bdi');
    text.textContent = escapeText(info.tokens[p] ?? '');
    el.append(text);
    el.title = tokenTitle(p);
    tokensBox.append(el);
  }
  const toks = [...tokensBox.querySelectorAll<HTMLElement>('.tok')];
  rove(toks, toks.find((el) => el.getAttribute('aria-pressed') === 'true') ?? toks[0] ?? null);
  if (focused) refocus(tokensBox, '.tok', focused.dataset.position === undefined ? null : `.tok[data-position="${focused.dataset.position}"]`);
  const m = info.meta;
  const meta = $<HTMLDivElement>('meta');
  meta.innerHTML = '';
  const parts = [m.model ?? '', m.prompt ? `“${m.prompt}”` : '', `${info.numLayers} layers × ${info.numHeads} heads`, `${info.seqLen} tokens`, `grid ${info.grid.rows}×${info.grid.cols}`, state.source!.kind].filter(Boolean);
  // Isolated, and their bidi controls shown as in tokens: a prompt's RLO would otherwise still reorder its own text.
  parts.forEach((t, i) => { const b = document.createElement('bdi'); b.textContent = escapeBidi(t); meta.append(...(i ? [' · '] : []), b); });
}

/** The element in `box` that has the keyboard focus, if any (read before `box` is rebuilt). */
function focusedIn(box: HTMLElement): HTMLElement | null {
  const a = document.activeElement;
  return a instanceof HTMLElement && box.contains(a) ? a : null;
}

/** Puts the focus back in a rebuilt `box`: on the control `same` names, else on its tab stop, else its first control. */
function refocus(box: HTMLElement, controls: string, same: string | null): void {
  const target = (same ? box.querySelector<HTMLElement>(same) : null)
    ?? [...box.querySelectorAll<HTMLElement>(controls)].find((el) => el.tabIndex === 0)
    ?? box.querySelector<HTMLElement>(controls);
  if (!target) return;
  rove(box.querySelectorAll<HTMLElement>(controls), target);
  target.focus();
}

function fmtScore(v: number | null): string {
  return typeof v === 'number' && Number.isFinite(v) ? v.toPrecision(4) : '—';
}

async function buildHeads(): Promise<void> {
  const h = await state.source!.get<HeadsJson>('/api/heads');
  $<HTMLElement>('heads-method').textContent = `(${h.method}: ${h.description})`;
  const focused = focusedIn(headsBox);
  headsBox.innerHTML = '';
  headsBox.style.gridTemplateColumns = `24px repeat(${h.numHeads}, 16px)`;
  const lut = colormapLut('viridis');
  // The colour scale spans the finite scores; a missing or non-finite one is grey and reads "—".
  let lo = Infinity, hi = -Infinity;
  for (const v of h.scores) if (typeof v === 'number' && Number.isFinite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  const frag = document.createDocumentFragment();
  const axis = (t: string) => { const d = document.createElement('div'); d.className = 'axis'; d.textContent = t; d.setAttribute('aria-hidden', 'true'); frag.append(d); };
  axis('');
  for (let j = 0; j < h.numHeads; j++) axis(j % Math.ceil(h.numHeads / 16) === 0 ? String(j) : '');
  for (let l = 0; l < h.numLayers; l++) {
    axis(String(l));
    for (let j = 0; j < h.numHeads; j++) {
      const v = h.scores[l * h.numHeads + j] ?? null;
      const finite = typeof v === 'number' && Number.isFinite(v);
      const cell = document.createElement('button');
      cell.type = 'button';
      cell.className = 'cell';
      cell.dataset.layer = String(l);
      cell.dataset.head = String(j);
      cell.tabIndex = -1;
      cell.setAttribute('aria-pressed', 'false');
      if (finite) {
        // Scaled in two steps: (v − lo) / (hi − lo) overflows when the scores span more than the float range.
        const t = hi > lo ? (v / 2 - lo / 2) / (hi / 2 - lo / 2) : 0.5;
        const k = Math.round(Math.min(1, Math.max(0, t)) * 255) * 3;
        cell.style.background = `rgb(${lut[k]},${lut[k + 1]},${lut[k + 2]})`;
      } else cell.style.background = '#555';
      const label = `layer ${l}, head ${j}: ${fmtScore(v)}`;
      cell.title = label;
      cell.setAttribute('aria-label', label);
      frag.append(cell);
    }
  }
  headsBox.append(frag);
  markHead();
  if (focused) refocus(headsBox, '.cell', focused.dataset.layer === undefined ? null : `.cell[data-layer="${focused.dataset.layer}"][data-head="${focused.dataset.head}"]`);
}

function markHead(): void {
  let pressed: HTMLElement | null = null;
  const cells = headsBox.querySelectorAll<HTMLElement>('.cell');
  for (const c of cells) {
    const on = c.dataset.layer === state.layer && c.dataset.head === state.head;
    c.classList.toggle('selected', on);
    c.setAttribute('aria-pressed', String(on));
    if (on) pressed = c;
  }
  // The tab stop follows the selection, unless the keyboard is in the grid (it keeps its place there).
  if (!headsBox.contains(document.activeElement)) rove(cells, pressed ?? cells[0] ?? null);
}

function defaultTokens(info: CaptureInfo): string {
  return String(info.textPositions[info.textPositions.length - 1] ?? info.queryPositions[info.queryPositions.length - 1]);
}

async function load(): Promise<void> {
  const src = state.source!;
  // Answers still on their way belong to the previous capture: refresh drops them.
  state.seq++;
  stage.dataset.state = 'loading';
  const { info, available } = await src.info();
  state.info = info;
  state.available = available;
  if (src.generation !== null) stage.dataset.generation = src.generation;
  // A capture without an image has nothing at /api/image (asking logged a 404 in the console).
  const png = info.image ? await src.image() : null;
  state.image = png ? decodePng(png) : null;
  state.cursor = null;
  // The screen reader's cursor text named a patch of the capture before.
  cursorStatus.textContent = '';
  put(baseImage(info.grid.rows, info.grid.cols));
  finishFrame();
  if (!state.tokens) state.tokens = defaultTokens(info);
  buildControls();
  await buildHeads();
  drawLegend();
  await refresh();
}

/**
 * load, again (a few times) when the server's capture changes under it; `onRetry` sets the selection to load the
 * changed capture with (what a link asked for, or the defaults with a note).
 */
async function loadCurrent(onRetry: () => void): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await load();
      return;
    } catch (e) {
      if (!(e instanceof CaptureChanged) || attempt >= 3) throw e;
      onRetry();
    }
  }
}

const REPLACED_NOTE = 'the capture on the server was replaced (opened in another tab or window): this page now shows the new capture, from its default view';

/** The default view of a capture the page did not expect, with the note that says why. */
function resetForReplaced(): void {
  resetSelection();
  if (!state.notes.includes(REPLACED_NOTE)) state.notes.push(REPLACED_NOTE);
}

/** Reloads past this many replacements in a row end in an error rather than loop while uploads keep coming. */
const MAX_RELOADS = 20;

/**
 * The server's capture was replaced (an upload from another tab): the page's tokens, header and selection belong
 * to the old one, so it loads the new one from its default view and says why. A 409 during the reload itself
 * (a further upload) makes it load again: the reload it interrupted drew nothing, and would leave the page 'loading'.
 */
async function captureReplaced(): Promise<void> {
  if (state.reloading) { state.reloadAgain = true; return; }
  state.reloading = true;
  try {
    for (let n = 0; ; n++) {
      if (n >= MAX_RELOADS) throw new Error(`the capture on the server was replaced ${MAX_RELOADS} times while this page loaded it: reload the page`);
      state.reloadAgain = false;
      resetForReplaced();
      await loadCurrent(resetForReplaced);
      if (!state.reloadAgain) break;
    }
  } catch (e) {
    showError((e as Error).message);
    stage.dataset.state = 'error';
  } finally {
    state.reloading = false;
  }
}

function resetSelection(): void {
  Object.assign(state, DEFAULTS);
  state.cursor = null;
}

/** Applies the page's link (query string, then hash) over the defaults: a fresh load and an edited hash alike. */
function readLinkParams(): void {
  resetSelection();
  const merged = new URLSearchParams(location.search);
  for (const [k, v] of new URLSearchParams(location.hash.replace(/^#/, ''))) merged.set(k, v);
  if (merged.has('tokens')) state.tokens = merged.get('tokens')!;
  if (merged.has('patch')) { state.patch = merged.get('patch')!; state.view = 'patch'; }
  if (merged.has('mode')) state.mode = merged.get('mode')!;
  if (merged.has('layer')) state.layer = merged.get('layer')!;
  if (merged.has('head')) state.head = merged.get('head')!;
  const cm = merged.get('colormap');
  if (cm === 'inferno' || cm === 'magma' || cm === 'viridis') state.colormap = cm;
  const op = merged.get('opacity');
  if (op !== null) {
    if (/^\d{1,3}$/.test(op) && Number(op) <= 100) state.opacity = String(Number(op));
    else state.notes.push(`opacity ${JSON.stringify(shorten(op, 20))} is not a whole number 0–100: showing ${DEFAULTS.opacity}`);
  }
  cmapSel.value = state.colormap;
  alphaIn.value = state.opacity;
}

function base64ToBytes(b64: string): Uint8Array {
  const s = atob(b64.replace(/\s+/g, ''));
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/** Shows which tokens attend to a patch (a click on the image, or Enter on the keyboard cursor). */
function pickPatch(row: number, col: number): void {
  const info = state.info!;
  state.cursor = { row, col };
  state.patch = String(row * info.grid.cols + col);
  state.view = 'patch';
  void refresh();
}

/** Where the keyboard cursor starts: the patch shown, else the map's hottest patch, else the middle. */
function startCursor(): { row: number; col: number } {
  const { rows, cols } = state.info!.grid;
  if (state.view === 'patch' && /^\d+$/.test(state.patch) && Number(state.patch) < rows * cols) return { row: Math.floor(Number(state.patch) / cols), col: Number(state.patch) % cols };
  if (state.lastMap && state.lastMap.max > 0) return { row: state.lastMap.argmax.row, col: state.lastMap.argmax.col };
  return { row: Math.floor(rows / 2), col: Math.floor(cols / 2) };
}

function announceCursor(): void {
  if (state.cursor) cursorStatus.textContent = `patch row ${state.cursor.row}, col ${state.cursor.col}`;
}

function wire(): void {
  for (const r of document.querySelectorAll<HTMLInputElement>('input[name="mode"]')) {
    r.addEventListener('change', () => { if (r.checked) { state.mode = r.value; normaliseSelection(); void refresh(); } });
  }
  layerSel.addEventListener('change', () => { state.layer = layerSel.value; markHead(); void refresh(); });
  headSel.addEventListener('change', () => { state.head = headSel.value; markHead(); void refresh(); });
  // Colour and opacity recolour the map on screen; only the patch view (token colours) redraws from the API.
  const recolour = () => {
    if (state.view === 'token' && state.lastMap && stage.dataset.state === 'ready') { drawTokenMap(state.lastMap); writeLink(); } else if (state.view === 'patch') void refresh();
  };
  cmapSel.addEventListener('change', () => { state.colormap = cmapSel.value as ColormapName; drawLegend(); recolour(); });
  // Opacity is part of the link too (a copied URL reopened at the default); the patch view does not draw with it.
  alphaIn.addEventListener('input', () => { state.opacity = alphaIn.value; if (state.view === 'token') recolour(); else if (stage.dataset.state === 'ready') writeLink(); });
  // Editing the link of an open page shows what the link says, as opening it would: from the defaults, not
  // on top of what the page showed (the offline file reads its parameters after #).
  window.addEventListener('hashchange', () => {
    readLinkParams();
    if (!state.info) return;
    if (!state.tokens) state.tokens = defaultTokens(state.info);
    drawLegend();
    normaliseSelection();
    void refresh();
  });

  tokensBox.addEventListener('click', (ev) => {
    const el = (ev.target as HTMLElement).closest<HTMLElement>('.tok');
    if (!el || !state.info) return;
    const p = el.dataset.position!;
    const cur = state.view === 'token' ? state.tokens.split(',').filter((x) => x !== '') : [];
    state.tokens = ev.shiftKey ? [...new Set([...cur, p])].join(',') : p;
    state.view = 'token';
    rove(tokensBox.querySelectorAll<HTMLElement>('.tok'), el);
    void refresh();
  });
  tokensBox.addEventListener('keydown', (ev) => {
    const items = [...tokensBox.querySelectorAll<HTMLElement>('.tok')];
    const i = items.indexOf(document.activeElement as HTMLElement);
    if (i < 0) return;
    const j = ev.key === 'ArrowRight' || ev.key === 'ArrowDown' ? Math.min(items.length - 1, i + 1)
      : ev.key === 'ArrowLeft' || ev.key === 'ArrowUp' ? Math.max(0, i - 1)
        : ev.key === 'Home' ? 0 : ev.key === 'End' ? items.length - 1 : -1;
    if (j < 0) return;
    ev.preventDefault();
    rove(items, items[j]!);
    items[j]!.focus();
  });

  headsBox.addEventListener('click', (ev) => {
    const cell = (ev.target as HTMLElement).closest<HTMLElement>('.cell');
    if (!cell) return;
    state.layer = cell.dataset.layer!; state.head = cell.dataset.head!; state.mode = 'raw';
    rove(headsBox.querySelectorAll<HTMLElement>('.cell'), cell);
    syncControls();
    void refresh();
  });
  headsBox.addEventListener('keydown', (ev) => {
    const cell = (document.activeElement as HTMLElement | null)?.closest<HTMLElement>('.cell');
    const info = state.info;
    if (!cell || !info || !headsBox.contains(cell)) return;
    let l = Number(cell.dataset.layer), h = Number(cell.dataset.head);
    switch (ev.key) {
      case 'ArrowLeft': h = Math.max(0, h - 1); break;
      case 'ArrowRight': h = Math.min(info.numHeads - 1, h + 1); break;
      case 'ArrowUp': l = Math.max(0, l - 1); break;
      case 'ArrowDown': l = Math.min(info.numLayers - 1, l + 1); break;
      case 'Home': h = 0; if (ev.ctrlKey) l = 0; break;
      case 'End': h = info.numHeads - 1; if (ev.ctrlKey) l = info.numLayers - 1; break;
      case 'PageUp': l = Math.max(0, l - 8); break;
      case 'PageDown': l = Math.min(info.numLayers - 1, l + 8); break;
      default: return;
    }
    ev.preventDefault();
    const next = headsBox.querySelector<HTMLElement>(`.cell[data-layer="${l}"][data-head="${h}"]`);
    if (!next) return;
    cell.tabIndex = -1;
    next.tabIndex = 0;
    next.focus();
  });

  canvas.addEventListener('click', (ev) => {
    const info = state.info;
    if (!info) return;
    const rect = canvas.getBoundingClientRect();
    const col = Math.min(info.grid.cols - 1, Math.max(0, Math.floor(((ev.clientX - rect.left) / rect.width) * info.grid.cols)));
    const row = Math.min(info.grid.rows - 1, Math.max(0, Math.floor(((ev.clientY - rect.top) / rect.height) * info.grid.rows)));
    pickPatch(row, col);
  });
  canvas.addEventListener('focus', () => {
    if (!state.info) return;
    state.cursor ??= startCursor();
    drawCursor();
    announceCursor();
  });
  canvas.addEventListener('blur', () => drawCursor());
  canvas.addEventListener('keydown', (ev) => {
    const info = state.info;
    if (!info) return;
    const { rows, cols } = info.grid;
    let { row, col } = state.cursor ?? startCursor();
    switch (ev.key) {
      case 'ArrowLeft': col = Math.max(0, col - 1); break;
      case 'ArrowRight': col = Math.min(cols - 1, col + 1); break;
      case 'ArrowUp': row = Math.max(0, row - 1); break;
      case 'ArrowDown': row = Math.min(rows - 1, row + 1); break;
      case 'Home': col = 0; break;
      case 'End': col = cols - 1; break;
      case 'Enter': case ' ': ev.preventDefault(); pickPatch(row, col); return;
      default: return;
    }
    ev.preventDefault();
    state.cursor = { row, col };
    drawCursor();
    announceCursor();
  });

  $<HTMLInputElement>('file').addEventListener('change', async (ev) => {
    const input = ev.target as HTMLInputElement;
    const f = input.files?.[0];
    if (!f || !state.source) return;
    try {
      await state.source.open(new Uint8Array(await f.arrayBuffer()));
      // The mode and colours carry over (said in a note where the new capture cannot do the mode); the tokens,
      // layer and head belong to the old capture.
      state.tokens = ''; state.view = 'token'; state.layer = 'all'; state.head = 'all';
      // Another client's upload can land between this one and its info: the page then says it shows that capture.
      await loadCurrent(resetForReplaced);
    } catch (e) {
      const err = e as Error;
      showError(`could not open ${f.name}: ${err instanceof ApiError ? err.message : `${err.name}: ${err.message}`}`);
      stage.dataset.state = 'error';
    } finally {
      // Choosing the same file again is a change too.
      input.value = '';
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
    // A capture replaced during the first load: the link still says what to show (it was opened for whatever
    // capture the server holds), so it is applied again rather than dropped, and the page says what happened.
    await loadCurrent(() => {
      state.notes = [];
      readLinkParams();
      state.notes.push('the capture on the server was replaced while this page loaded: it shows the new capture');
    });
  } catch (e) {
    showError((e as Error).message);
    stage.dataset.state = 'error';
  }
}

void main();
