import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ShapeError, ValueError } from '../../errors.js';
import { parseNpy } from '../../io/npy.js';
import { captureAvailability, headImportanceOf } from '../../viz/api.js';
import { type Capture, type CaptureDType, captureFitsDType, encodeCapture, encodedCaptureBytes } from '../../viz/capture-file.js';
import { COLORMAP_NAMES, type ColormapName } from '../../viz/colormap.js';
import { discoverHeads, type HeadExample, headDiscoveryJson, headHeatmap, headHeatmapPng } from '../../viz/heads.js';
import { type MapMode, MAP_MODES, renderMapPng, rowOf, tokenMap } from '../../viz/maps.js';
import { captureStem, ensureDir, exportCapture, readCapture, readCaptureSource, writeCapture } from '../../viz/node-files.js';
import { parseIndexList } from '../../viz/index-list.js';
import { encodePng } from '../../viz/png.js';
import { syntheticCapture } from '../../viz/synthetic.js';
import { MAX_EMBED_CHARS, embedCapture, embeddedLength, escapeHtml, loadViewerHtml } from '../../viz/viewer-html.js';
import { type Command, UsageError, progress, cliNumber, refuseFlags } from '../command.js';

const usage = `vlm-attention viz <capture> [flags]        attention maps, head importance and a self-contained viewer
vlm-attention viz --synthetic [flags]      the same for a built-in synthetic scene (no model needed)
vlm-attention viz --discover <capture>...  head discovery over several (image, query) examples

<capture>: a capture file (.vlmcap.safetensors), or a directory / capture.json manifest of arrays
exported from PyTorch (safetensors or .npy, e.g. output_attentions=True per layer); see
docs/interpretability.md.

  --out DIR             output directory (default ./vlm-attention-out/viz/<name>)
  --tokens W1,W2        text tokens by string (case-insensitive; BPE markers Ġ ▁ ignored); default: all text tokens
  --positions P1,P2     text tokens by sequence position
  --combine             one map averaging the chosen tokens instead of one map per token
  --modes raw,rollout   maps to draw: raw, rollout, flow (default raw + rollout when available)
  --layers all|0-3|1,5  layers to average (raw) or the stack to roll out (rollout/flow); default all
  --heads all|0,2       heads to average; default all
  --colormap NAME       inferno (default), magma, viridis
  --alpha A             heatmap opacity 0..1 (default 0.75; the hottest pixels reach 1-(1-0.4A)(1-A), 0.825 at 0.75)
  --no-html             skip the self-contained viewer.html (skipped anyway, with a note, for a capture too
                        large for one page: about 400 MB; serve it with \`vlm-attention view <capture>\` instead)
  --export DIR          also export the capture as transformers-style arrays + capture.json
  --export-format F     safetensors (default) or npy
  --save-capture FILE   also write the (e.g. synthetic or manifest) capture as one capture file
  --seed N              synthetic scene seed (default 1)
  --discover            treat every positional argument as one example capture; rank heads
  --examples FILE       head discovery from a JSON list of {capture, tokens?, mask?, activations?, label?}
  --mask NAME|auto      discovery: the capture mask to localise against (auto: a mask whose name contains the token)
  --k N                 discovery: heads to keep (default 20)
  --json                machine-readable summary on stdout`;

const slug = (s: string) => s.replace(/^[ĠĠ▁\s]+/u, '').replace(/[^A-Za-z0-9_-]+/g, '_').slice(0, 24) || 'tok';
const norm = (s: string) => s.replace(/^[Ġ▁\s]+/u, '').trim().toLowerCase();

/** Sequence positions of the words among the capture's text tokens (every occurrence). */
export function positionsOfWords(c: Capture, words: readonly string[]): number[] {
  const out: number[] = [];
  for (const w of words) {
    const hits = c.info.textPositions.filter((p) => norm(c.info.tokens[p]!) === norm(w));
    if (hits.length === 0) {
      const avail = c.info.textPositions.map((p) => JSON.stringify(c.info.tokens[p])).slice(0, 40).join(' ');
      throw new ValueError(`token ${JSON.stringify(w)} is not among the capture's text tokens: ${avail}`, 'tokens');
    }
    out.push(...hits);
  }
  return [...new Set(out)];
}

async function discover(values: Record<string, string | boolean | undefined>, positionals: string[], json: boolean): Promise<void> {
  const examples: HeadExample[] = [];
  const words = typeof values.tokens === 'string' ? values.tokens.split(',').filter(Boolean) : undefined;
  const maskOpt = values.mask as string | undefined;
  const maskFor = (c: Capture, toks: number[]): string | undefined => {
    if (!maskOpt) return undefined;
    if (maskOpt !== 'auto') return maskOpt;
    const names = [...(c.masks?.keys() ?? [])];
    const ws = toks.map((t) => norm(c.info.tokens[t]!));
    return names.find((n) => ws.some((w) => w && n.toLowerCase().split(/[_\-]/).includes(w)));
  };
  if (typeof values.examples === 'string') {
    const specPath = resolve(values.examples);
    let spec: unknown;
    try { spec = JSON.parse(await readFile(specPath, 'utf8')); } catch (e) { throw new ValueError(`--examples ${values.examples}: ${(e as Error).message}`, 'examples'); }
    if (!Array.isArray(spec) || spec.length === 0) throw new ValueError('--examples must be a non-empty JSON array', 'examples');
    const KEYS = ['capture', 'tokens', 'mask', 'activations', 'label'];
    for (const [i, ex] of spec.entries()) {
      const at = `--examples ${values.examples}: examples[${i}]`;
      if (!ex || typeof ex !== 'object' || Array.isArray(ex)) throw new ValueError(`${at} must be an object {capture, tokens?, mask?, activations?, label?}`, 'examples');
      const unknown = Object.keys(ex).filter((key) => !KEYS.includes(key));
      if (unknown.length) throw new ValueError(`${at} has unknown key(s) ${unknown.map((u) => JSON.stringify(u)).join(', ')} (allowed: ${KEYS.join(', ')})`, 'examples');
      if (typeof ex.capture !== 'string') throw new ValueError(`${at}.capture must be a path`, 'examples');
      if (ex.tokens !== undefined && !(Array.isArray(ex.tokens) && (ex.tokens.every((t: unknown) => Number.isInteger(t) && (t as number) >= 0) || ex.tokens.every((t: unknown) => typeof t === 'string')))) {
        throw new ValueError(`${at}.tokens must be a list of sequence positions or a list of token strings (not mixed), got ${JSON.stringify(ex.tokens)}`, 'examples');
      }
      for (const key of ['mask', 'activations', 'label'] as const) if (ex[key] !== undefined && typeof ex[key] !== 'string') throw new ValueError(`${at}.${key} must be a string, got ${JSON.stringify(ex[key])}`, 'examples');
      // Paths relative to the spec's folder; absolute ones as they are (join glued them onto the folder).
      const c = await readCapture(resolve(dirname(specPath), ex.capture));
      const toks = Array.isArray(ex.tokens) ? (ex.tokens.every((t: unknown) => typeof t === 'number') ? ex.tokens : positionsOfWords(c, ex.tokens)) : words ? positionsOfWords(c, words) : undefined;
      const e: HeadExample = { capture: c, ...(toks ? { tokens: toks } : {}), ...(ex.mask ? { mask: ex.mask } : {}), ...(typeof ex.label === 'string' ? { label: ex.label } : {}) };
      if (typeof ex.activations === 'string') e.activations = parseNpy(await readFile(resolve(dirname(specPath), ex.activations)), { path: ex.activations });
      if (!e.mask && toks) { const m = maskFor(c, toks); if (m) e.mask = m; }
      examples.push(e);
    }
  } else {
    if (positionals.length === 0) throw new UsageError('--discover needs one or more capture paths');
    for (const p of positionals) {
      const c = await readCapture(p);
      const toks = words ? positionsOfWords(c, words) : undefined;
      // One example per chosen token, so each token can be scored against its own mask.
      for (const t of toks ?? [undefined]) {
        const tt = t === undefined ? undefined : [t];
        const m = tt ? maskFor(c, tt) : maskFor(c, c.info.textPositions);
        examples.push({ capture: c, ...(tt ? { tokens: tt } : {}), ...(m ? { mask: m } : {}) });
      }
    }
  }
  const k = values.k === undefined ? 20 : cliNumber(values.k);
  if (!Number.isInteger(k) || k < 1) throw new UsageError(`--k must be a positive integer, got ${values.k}`);
  const d = discoverHeads(examples, { k });
  const out = resolve((values.out as string | undefined) ?? 'vlm-attention-out/viz/heads');
  await ensureDir(out);
  await writeFile(join(out, 'heads.json'), JSON.stringify(headDiscoveryJson(d), null, 2) + '\n');
  await writeFile(join(out, 'heads.png'), headHeatmapPng(d, { cellPixels: d.numHeads > 32 ? 8 : 16 }));
  const summary = { method: d.method, examples: d.numExamples, numLayers: d.numLayers, numHeads: d.numHeads, top: d.top, files: [join(out, 'heads.json'), join(out, 'heads.png')] };
  if (json) console.log(JSON.stringify(summary, null, 2));
  else {
    console.log(`head discovery over ${d.numExamples} example(s), ${d.numLayers} layers × ${d.numHeads} heads, ranked by ${d.method}`);
    console.log('rank  layer  head  score');
    d.top.forEach((t, i) => console.log(`${String(i + 1).padStart(4)}  ${String(t.layer).padStart(5)}  ${String(t.head).padStart(4)}  ${t.score.toFixed(4)}`));
    console.log(`wrote ${summary.files.join(', ')}`);
  }
}

const command: Command = {
  summary: 'attention maps (raw/rollout/flow), head importance and a self-contained viewer for a capture',
  flags: { dir: 'out' },
  usage,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        out: { type: 'string' }, tokens: { type: 'string' }, positions: { type: 'string' }, combine: { type: 'boolean', default: false },
        modes: { type: 'string' }, layers: { type: 'string' }, heads: { type: 'string' }, colormap: { type: 'string', default: 'inferno' },
        alpha: { type: 'string', default: '0.75' }, 'no-html': { type: 'boolean', default: false }, export: { type: 'string' },
        'export-format': { type: 'string', default: 'safetensors' }, 'save-capture': { type: 'string' }, synthetic: { type: 'boolean', default: false },
        seed: { type: 'string', default: '1' }, discover: { type: 'boolean', default: false }, examples: { type: 'string' }, mask: { type: 'string' },
        k: { type: 'string' }, json: { type: 'boolean', default: false },
      },
    });
    const json = values.json!;
    // Checked before any work (it was checked after every map had been written).
    const fmt = values['export-format'];
    if (fmt !== 'safetensors' && fmt !== 'npy') throw new UsageError(`--export-format must be safetensors or npy, got ${fmt}`);
    const MAP_ONLY = ['positions', 'combine', 'modes', 'layers', 'heads', 'colormap', 'alpha', 'no-html', 'export', 'export-format', 'save-capture', 'synthetic', 'seed'];
    if (values.discover || values.examples) {
      refuseFlags(argv, MAP_ONLY, 'with --discover/--examples (head discovery)');
      if (values.examples && positionals.length) throw new UsageError(`--examples takes its captures from the file; remove the capture path(s) ${positionals.join(' ')}`);
      return discover(values as Record<string, string | boolean | undefined>, positionals, json);
    }
    refuseFlags(argv, ['mask', 'k'], 'without --discover (they choose what head discovery scores)');
    const say = progress(!json);
    let capture: Capture, name: string;
    // The capture file's own bytes (viewer.html embeds them as they are) and how to serve it instead.
    let sourceBytes: Uint8Array | null = null, viewCommand: string;
    if (values.synthetic) {
      if (positionals.length) throw new UsageError('--synthetic takes no capture path');
      const seed = cliNumber(values.seed);
      if (!Number.isInteger(seed)) throw new UsageError(`--seed must be an integer, got ${values.seed}`);
      say('building the synthetic scene capture');
      capture = await syntheticCapture({ seed });
      name = `synthetic-${seed}`;
      viewCommand = `vlm-attention view --synthetic --seed ${seed}`;
    } else {
      refuseFlags(argv, ['seed'], 'without --synthetic (it seeds the synthetic scene)');
      if (positionals.length !== 1) throw new UsageError(`expected one capture path, got ${positionals.length}\n${usage.split('\n')[0]}`);
      ({ capture, bytes: sourceBytes } = await readCaptureSource(positionals[0]!));
      name = captureStem(positionals[0]!);
      viewCommand = `vlm-attention view ${shellQuote(resolve(positionals[0]!))}`;
    }
    const cm = values.colormap as ColormapName;
    if (!COLORMAP_NAMES.includes(cm)) throw new UsageError(`--colormap must be one of ${COLORMAP_NAMES.join(', ')}, got ${values.colormap}`);
    const alpha = cliNumber(values.alpha);
    if (!(alpha >= 0 && alpha <= 1)) throw new UsageError(`--alpha must be in [0, 1], got ${values.alpha}`);
    const layers = parseIndexList(values.layers, '--layers', 'numLayers', capture.info.numLayers);
    const heads = parseIndexList(values.heads, '--heads', 'numHeads', capture.info.numHeads);
    const avail = captureAvailability(capture);
    let modes: MapMode[];
    if (values.modes) {
      modes = [...new Set(values.modes.split(',').map((m) => m.trim()))] as MapMode[];
      for (const m of modes) if (!MAP_MODES.includes(m)) throw new UsageError(`--modes: unknown mode ${JSON.stringify(m)} (raw, rollout, flow)`);
    } else modes = avail.rollout ? ['raw', 'rollout'] : ['raw'];
    let positions: number[];
    if (values.positions !== undefined) {
      positions = parseIndexList(values.positions, '--positions', 'seqLen', capture.info.seqLen) ?? capture.info.textPositions;
      const seen = new Set<number>();
      for (const p of positions) {
        if (p < 0 || p >= capture.info.seqLen) throw new ShapeError(`--positions: token index ${p} is out of range 0..${capture.info.seqLen - 1}`, '--positions', 'seqLen');
        rowOf(capture, p, '--positions');
        // As --layers and the viewer's API refuse a repeat: with --combine it counted twice in the mean.
        if (seen.has(p)) throw new ShapeError(`--positions contains ${p} twice; each position may be listed once`, '--positions', 'seqLen');
        seen.add(p);
      }
    } else if (values.tokens !== undefined) positions = positionsOfWords(capture, values.tokens.split(',').map((s) => s.trim()).filter(Boolean));
    else positions = capture.info.textPositions;
    if (positions.length === 0) throw new ShapeError('no text tokens to map', 'tokens', 'seqLen');
    if (positions.length > 64 && !values.combine) throw new UsageError(`${positions.length} text tokens would give ${positions.length * modes.length} PNGs; choose some with --tokens/--positions, or --combine`);
    const out = resolve(values.out ?? join('vlm-attention-out', 'viz', name));
    await ensureDir(out);
    const groups = values.combine ? [positions] : positions.map((p) => [p]);
    const maps: MapEntry[] = [];
    let done = 0;
    for (const mode of modes) {
      for (const g of groups) {
        const m = tokenMap(capture, g, { mode, layers, heads });
        const words = g.map((p) => capture.info.tokens[p]!);
        const file = join(out, `${mode}-${g.length === 1 ? `${g[0]}-${slug(words[0]!)}` : `combined-${g.length}`}.png`);
        await writeFile(file, renderMapPng(capture, m, { colormap: cm, alpha }));
        maps.push({ file, mode, tokens: g, words, argmax: { row: m.argmax.row, col: m.argmax.col }, total: m.total, max: m.max });
        say(`maps (${mode})`, ++done / (modes.length * groups.length));
      }
    }
    const hi = headImportanceOf(capture);
    const headsFile = join(out, 'heads.png');
    await writeFile(headsFile, encodePng(headHeatmap(hi.scores, capture.info.numLayers, capture.info.numHeads, { cellPixels: capture.info.numHeads > 32 ? 8 : 16 })));
    const files = [...maps.map((m) => m.file), headsFile];
    const notices: string[] = [];
    let viewer = false;
    if (!values['no-html']) {
      const htmlFile = join(out, 'viewer.html');
      const title = `vlm-attention viewer: ${name}`;
      const html = loadViewerHtml();
      const embed = chooseViewerEmbed(capture, sourceBytes, html, title, viewerMaxChars(), viewCommand);
      if ('skip' in embed) notices.push(embed.skip);
      else {
        if (embed.note) notices.push(embed.note);
        await writeFile(htmlFile, embedCapture(html, embed.bytes(), title, { maxChars: viewerMaxChars() }));
        files.push(htmlFile);
        viewer = true;
      }
    }
    // Said at once (stderr), one line each, and again in the summary.
    for (const n of notices) process.stderr.write(`note: ${n}\n`);
    await writeFile(join(out, 'index.html'), indexHtml(name, capture, maps, viewer, layers, heads, notices));
    files.push(join(out, 'index.html'));
    if (values['save-capture']) { await writeCapture(resolve(values['save-capture']), capture); files.push(resolve(values['save-capture'])); }
    if (values.export) {
      files.push(...(await exportCapture(capture, resolve(values.export), { format: fmt })));
    }
    const summary = { capture: name, out, grid: capture.info.grid, numLayers: capture.info.numLayers, numHeads: capture.info.numHeads, available: avail, headImportance: { method: hi.method }, maps: maps.map(({ max: _max, ...m }) => m), files, viewer: viewer ? join(out, 'viewer.html') : null, notices };
    if (json) console.log(JSON.stringify(summary, null, 2));
    else {
      console.log(`${name}: ${capture.info.numLayers} layers × ${capture.info.numHeads} heads, ${capture.info.seqLen} tokens, grid ${capture.info.grid.rows}×${capture.info.grid.cols}`);
      for (const m of maps) console.log(`  ${m.mode.padEnd(7)} ${m.words.map((w) => JSON.stringify(w)).join('+').padEnd(24)} ${m.max > 0 ? `hottest patch (${m.argmax.row}, ${m.argmax.col})` : 'no image attention (all zero)'}  → ${m.file}`);
      console.log(`  head importance (${hi.method}) → ${headsFile}`);
      if (viewer) console.log(`  viewer (self-contained, offline) → ${join(out, 'viewer.html')}`);
    }
  },
};

interface MapEntry { file: string; mode: MapMode; tokens: number[]; words: string[]; argmax: { row: number; col: number }; total: number; max: number }

/** `s` as one shell word: as it is where that is safe, else in single quotes. */
export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./:@%+=,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * The page-size limit for viewer.html: MAX_EMBED_CHARS, or less where $VLM_ATTENTION_VIEWER_MAX_CHARS says (a
 * test hook: a capture past the real limit is some 400 MB).
 */
export function viewerMaxChars(): number {
  const n = Number(process.env.VLM_ATTENTION_VIEWER_MAX_CHARS);
  return Number.isInteger(n) && n > 0 ? Math.min(n, MAX_EMBED_CHARS) : MAX_EMBED_CHARS;
}

/**
 * What viewer.html embeds, decided from sizes before anything is encoded: the capture file as it is (its own
 * precision), else the capture encoded in f32; where that page would be too long, in f16 (the viewer decodes f16;
 * half the size), with a note; where even that is too long, nothing: `skip` says why and how to view it instead.
 */
export function chooseViewerEmbed(capture: Capture, sourceBytes: Uint8Array | null, html: string, title: string, maxChars: number, viewCommand: string): { bytes: () => Uint8Array; note?: string } | { skip: string } {
  const fits = (n: number) => embeddedLength(html, n, title) <= maxChars;
  const encoded = (dtype: CaptureDType) => () => encodeCapture(capture, { dtype });
  if (sourceBytes && fits(sourceBytes.byteLength)) return { bytes: () => sourceBytes };
  if (!sourceBytes && fits(encodedCaptureBytes(capture))) return { bytes: encoded('f32') };
  const f16 = encodedCaptureBytes(capture, { dtype: 'f16' });
  // Values past f16's range (65504) would be stored as Infinity, which the page refuses: f16 only where all fit.
  const f16Fits = fits(f16) && (!sourceBytes || f16 < sourceBytes.byteLength);
  if (f16Fits && captureFitsDType(capture, 'f16')) {
    return { bytes: encoded('f16'), note: 'viewer.html holds the attention in f16 to fit in one page (f32 would not); its maps can differ from the PNGs in the fourth significant digit' };
  }
  const n = sourceBytes?.byteLength ?? f16;
  const mb = (n / 2 ** 20).toFixed(n < 2 ** 20 ? 2 : 0);
  if (f16Fits) return { skip: `viewer.html not written: the capture (${mb} MiB) is too large for one page in f32, and its attention has values past f16's range (65504); view it with \`${viewCommand}\`` };
  return { skip: `viewer.html not written: the capture (${mb} MiB) makes a page of ${embeddedLength(html, Math.min(n, f16), title)} characters, over the ${maxChars} one page can hold; view it with \`${viewCommand}\`` };
}

/**
 * The viewer's deep-link parameters for a map of these layers and heads, or null where the viewer cannot show
 * that selection (it takes one layer, or for rollout and flow the layers 0..l, and one head or all).
 */
export function viewerSelection(mode: string, layers: readonly number[] | undefined, heads: readonly number[] | undefined): string | null {
  let q = '';
  if (layers) {
    const l = layers[layers.length - 1]!;
    const stack = mode !== 'raw';
    const ok = stack ? layers.length === l + 1 && layers.every((x, i) => x === i) : layers.length === 1;
    if (!ok) return null;
    q += `&layer=${l}`;
  }
  if (heads) {
    if (heads.length !== 1) return null;
    q += `&head=${heads[0]}`;
  }
  return q;
}

function indexHtml(name: string, c: Capture, maps: MapEntry[], viewer: boolean, layers?: number[], heads?: number[], notices: string[] = []): string {
  const rel = (f: string) => f.split(/[\\/]/).pop()!;
  const link = (m: { mode: string; tokens: number[] }) => {
    const sel = viewerSelection(m.mode, layers, heads);
    // A selection the viewer cannot show opens with every layer and head, and says so.
    const href = `viewer.html#tokens=${m.tokens.join(',')}&mode=${m.mode}${sel ?? ''}`;
    return ` · <a href="${escapeHtml(href)}">open in viewer${sel === null ? ' (all layers and heads)' : ''}</a>`;
  };
  // An all-zero map has no hottest patch: its argmax (row 0, col 0) is only the first of equals.
  const hottest = (m: MapEntry, long: boolean) => (m.max > 0 ? (long ? `hottest at patch row ${m.argmax.row}, col ${m.argmax.col}` : `hottest (${m.argmax.row}, ${m.argmax.col})`) : 'no image attention (all zero)');
  const alt = (m: MapEntry) => `${m.mode} attention of ${m.words.map((w) => JSON.stringify(w)).join(' + ')} over the image, ${hottest(m, true)}`;
  const cards = maps.map((m) => `<figure><img src="${escapeHtml(rel(m.file))}" alt="${escapeHtml(alt(m))}"><figcaption><b>${escapeHtml(m.words.join(' + '))}</b> · ${m.mode} · ${hottest(m, false)}${viewer ? link(m) : ''}</figcaption></figure>`).join('\n');
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(name)}: attention maps</title>
<style>body{font:14px system-ui,sans-serif;background:#111317;color:#e8e8ea;margin:16px}a{color:#4cc2ff}figure{display:inline-block;margin:6px;vertical-align:top}img{width:224px;image-rendering:auto;border-radius:4px}figcaption{max-width:224px;font-size:12px;color:#9aa0aa;overflow-wrap:anywhere}code{overflow-wrap:anywhere}</style></head>
<body><h1>${escapeHtml(name)}</h1><p>${escapeHtml(c.info.meta.model ?? '')} ${escapeHtml(c.info.meta.prompt ? `“${c.info.meta.prompt}”` : '')} · ${c.info.numLayers} layers × ${c.info.numHeads} heads${viewer ? ' · <a href="viewer.html">interactive viewer</a>' : ''}</p>
${notices.map((n) => `<p class="note">${escapeHtml(n).replace(/`([^`]+)`/g, '<code>$1</code>')}</p>`).join('\n')}
${cards}
<h2>Head importance</h2><img src="heads.png" alt="Head importance (${escapeHtml(headImportanceOf(c).method)}) as a grid: one row per layer (0–${c.info.numLayers - 1}), one column per head (0–${c.info.numHeads - 1}); brighter is more important" style="width:auto;image-rendering:pixelated"></body></html>
`;
}

export default command;
