/**
 * `vlm-attention viz` and `vlm-attention view`: outputs, --json, typed errors for bad input.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// @ts-expect-error: plain .mjs build script without types
import { buildViewer } from '../../../scripts/build-viewer.mjs';
import { UsageError } from '../../../src/cli/command.js';
import { startView } from '../../../src/cli/commands/view.js';
import { FormatError, ShapeError, ValueError } from '../../../src/errors.js';
import { type Capture, decodeCapture, encodedCaptureBytes, makeCapture } from '../../../src/viz/capture-file.js';
import { parseSafetensors } from '../../../src/io/safetensors.js';
import { chooseViewerEmbed, shellQuote } from '../../../src/cli/commands/viz.js';
import { embedCapture, embeddedLength, loadViewerHtml } from '../../../src/viz/viewer-html.js';
import { ndarrayFromValues } from '../../../src/io/npy.js';
import { randomAttention } from './fixtures.js';
import { tokenMap } from '../../../src/viz/maps.js';
import { writeCapture } from '../../../src/viz/node-files.js';
import { decodePng } from '../../../src/viz/png.js';
import { SYNTHETIC_OBJECTS, syntheticCapture } from '../../../src/viz/synthetic.js';
import { runCommand } from '../../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'vlm-viz-cli-'));
let capture: Capture;
const capFile = join(dir, 'scene.vlmcap.safetensors');

beforeAll(async () => {
  // The commands read the bundled page; build it where they look (also done by scripts/build.mjs).
  await buildViewer();
  capture = await syntheticCapture({ seed: 5 });
  await writeCapture(capFile, capture);
}, 120_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const viz = async (argv: string[]): Promise<string> => (await runCommand('viz', argv)).out;

describe('vlm-attention viz', () => {
  it('writes one PNG per token and mode, heads.png, a self-contained viewer.html and index.html; maps show each object hottest', async () => {
    const out = join(dir, 'out1');
    const s = JSON.parse(await viz([capFile, '--out', out, '--tokens', 'red,blue,green', '--json']));
    expect(s.maps.length).toBe(6); // 3 tokens × (raw, rollout)
    for (const m of s.maps) {
      expect(existsSync(m.file)).toBe(true);
      const obj = SYNTHETIC_OBJECTS.find((o) => o.colour === m.words[0])!;
      const mask = capture.masks!.get(obj.name)!;
      expect(mask[m.argmax.row * capture.info.grid.cols + m.argmax.col], `${m.mode} ${m.words[0]}`).toBe(1);
      const img = decodePng(readFileSync(m.file));
      expect([img.width, img.height]).toEqual([capture.info.image!.width, capture.info.image!.height]);
    }
    expect(existsSync(join(out, 'heads.png'))).toBe(true);
    const html = readFileSync(join(out, 'viewer.html'), 'utf8');
    const b64 = /<script id="vlm-capture" type="application\/octet-stream;base64">([^<]+)<\/script>/.exec(html)![1]!;
    expect(decodeCapture(new Uint8Array(Buffer.from(b64, 'base64'))).info).toEqual(capture.info);
    expect(html).not.toMatch(/https?:\/\/(?!127\.0\.0\.1)[a-z]/i); // nothing fetched from the network
    expect(readFileSync(join(out, 'index.html'), 'utf8')).toContain('viewer.html#tokens=');
  }, 60_000);

  it("index.html's viewer links carry the maps' layer and head where the viewer can show them, and say so where not", async () => {
    const out = join(dir, 'out-links');
    await viz([capFile, '--out', out, '--tokens', 'red', '--modes', 'raw,rollout', '--layers', '0-1', '--heads', '2', '--json']);
    const html = readFileSync(join(out, 'index.html'), 'utf8');
    const hrefs = [...html.matchAll(/href="(viewer\.html#[^"]+)">open in viewer([^<]*)</g)].map((m) => [m[1]!.replace(/&amp;/g, '&'), m[2]]);
    expect(hrefs.length).toBe(2);
    // rollout over layers 0-1 is the viewer's layer 1 (a stack); raw over two layers is not one of its choices.
    expect(hrefs.find(([h]) => h!.includes('mode=rollout'))).toEqual([expect.stringMatching(/&layer=1&head=2$/), '']);
    expect(hrefs.find(([h]) => h!.includes('mode=raw'))).toEqual([expect.not.stringMatching(/layer=/), ' (all layers and heads)']);
    // Lists are bounded by the capture's dimensions before they are expanded.
    await expect(viz([capFile, '--out', out, '--tokens', 'red', '--layers', '0-999999999'])).rejects.toMatchObject({ name: 'ShapeError', argument: '--layers' });
    await expect(viz([capFile, '--out', out, '--positions', '1,0-9999'])).rejects.toMatchObject({ name: 'ShapeError', argument: '--positions' });
  }, 60_000);

  it('--positions, --layers, --heads, --modes flow, --combine and exports', async () => {
    const out = join(dir, 'out2');
    const red = capture.info.tokens.lastIndexOf('red'), sq = capture.info.tokens.lastIndexOf('square');
    const s = JSON.parse(await viz([capFile, '--out', out, '--positions', `${red},${sq}`, '--combine', '--modes', 'raw,flow', '--layers', '0-1', '--heads', '0,1', '--no-html', '--export', join(out, 'export'), '--export-format', 'npy', '--json']));
    expect(s.maps.map((m: { mode: string }) => m.mode)).toEqual(['raw', 'flow']);
    const ref = tokenMap(capture, [red, sq], { layers: [0, 1], heads: [0, 1] });
    expect(s.maps[0].argmax).toEqual({ row: ref.argmax.row, col: ref.argmax.col });
    expect(existsSync(join(out, 'viewer.html'))).toBe(false);
    expect(existsSync(join(out, 'export', 'capture.json'))).toBe(true);
    expect(existsSync(join(out, 'export', 'attentions', 'layer_00.npy'))).toBe(true);
    // The export reads back through the manifest path.
    const again = JSON.parse(await viz([join(out, 'export'), '--out', join(dir, 'out3'), '--tokens', 'green', '--modes', 'raw', '--no-html', '--json']));
    expect(again.maps[0].argmax).toEqual((() => { const m = tokenMap(capture, [capture.info.tokens.lastIndexOf('green')]); return { row: m.argmax.row, col: m.argmax.col }; })());
  }, 60_000);

  it('--synthetic and --discover', async () => {
    const out = join(dir, 'synth');
    const s = JSON.parse(await viz(['--synthetic', '--seed', '3', '--out', out, '--tokens', 'blue', '--no-html', '--save-capture', join(dir, 's3.vlmcap.safetensors'), '--json']));
    expect(s.maps.length).toBe(2);
    const d = JSON.parse(await viz(['--discover', capFile, join(dir, 's3.vlmcap.safetensors'), '--tokens', 'red,blue,green', '--mask', 'auto', '--k', '4', '--out', join(dir, 'heads'), '--json']));
    expect(d.method).toBe('localisation');
    expect(d.examples).toBe(6);
    for (const t of d.top) expect([0, 1]).toContain(t.head);
    const heads = JSON.parse(readFileSync(join(dir, 'heads', 'heads.json'), 'utf8'));
    expect(heads.stats.length).toBe(4 * 4);
    expect(existsSync(join(dir, 'heads', 'heads.png'))).toBe(true);
  }, 60_000);

  it('bad input → typed errors (the CLI prints one line and exits non-zero)', async () => {
    await expect(viz([join(dir, 'nope.vlmcap.safetensors')])).rejects.toThrow(FormatError);
    const corrupt = join(dir, 'corrupt.vlmcap.safetensors');
    writeFileSync(corrupt, readFileSync(capFile).subarray(0, 2000));
    await expect(viz([corrupt])).rejects.toThrow(FormatError);
    await expect(viz([capFile, '--positions', '999', '--out', join(dir, 'e')])).rejects.toThrow(/token index 999 is out of range/);
    await expect(viz([capFile, '--positions', '999', '--out', join(dir, 'e')])).rejects.toThrow(ShapeError);
    await expect(viz([capFile, '--tokens', 'zebra', '--out', join(dir, 'e')])).rejects.toThrow(ValueError);
    await expect(viz([capFile, '--tokens', 'red', '--layers', '7', '--out', join(dir, 'e')])).rejects.toThrow(/layers contains 7/);
    await expect(viz([capFile, '--tokens', 'red', '--heads', '4', '--out', join(dir, 'e')])).rejects.toThrow(/heads contains 4/);
    await expect(viz([capFile, '--modes', 'magic'])).rejects.toThrow(UsageError);
    await expect(viz([capFile, '--colormap', 'jet'])).rejects.toThrow(UsageError);
    await expect(viz([])).rejects.toThrow(UsageError);
    await expect(viz([capFile, '--layers', 'x'])).rejects.toMatchObject({ name: 'ShapeError', argument: '--layers' });
    // --seed seeds the synthetic scene only: with a capture path it was silently ignored.
    await expect(viz([capFile, '--seed', '5', '--out', join(dir, 'e')])).rejects.toThrow(/--seed does nothing without --synthetic/);
    // A position in range that the capture stores no row for names --positions (it named the library's 'tokens').
    const textOnly = join(dir, 'text-only.vlmcap.safetensors');
    await writeCapture(textOnly, makeCapture({
      tokens: ['<bos>', ...Array.from({ length: 9 }, (_, i) => `<img ${i}>`), 'big', 'dog'], grid: [3, 3], imageSpan: [1, 10],
      attention: [ndarrayFromValues(randomAttention(2, 3, 12, 1), [2, 3, 12])], queryPositions: [0, 10, 11],
    }));
    await expect(viz([textOnly, '--positions', '3', '--out', join(dir, 'e')])).rejects.toMatchObject({ name: 'ShapeError', argument: '--positions' });
    // Examples from different models cannot be ranked together.
    const three = join(dir, 'three.vlmcap.safetensors');
    await writeCapture(three, await syntheticCapture({ seed: 1, numLayers: 3 }));
    await expect(viz(['--discover', capFile, three, '--out', join(dir, 'e')])).rejects.toThrow(/examples\[1\] has 3 layers, examples\[0\] has 4/);
  });

  it('flags of the other mode are refused, not ignored; --modes repeats are drawn once', async () => {
    await expect(viz(['--discover', capFile, '--modes', 'raw', '--alpha', '9'])).rejects.toThrow(/--modes, --alpha do nothing with --discover/);
    await expect(viz(['--synthetic', '--k', '3', '--mask', 'foo'])).rejects.toThrow(/--mask, --k do nothing without --discover/);
    const spec = join(dir, 'spec-plain.json');
    writeFileSync(spec, JSON.stringify([{ capture: capFile }]));
    await expect(viz(['--examples', spec, capFile])).rejects.toThrow(/takes its captures from the file/);
    const r = JSON.parse(await viz([capFile, '--tokens', 'red', '--modes', 'raw,raw', '--no-html', '--out', join(dir, 'dup'), '--json']));
    expect(r.maps.length).toBe(1);
  }, 60_000);

  it('--examples: each entry checked (mixed tokens, unknown keys, wrong types); absolute paths work', async () => {
    const sub = join(dir, 'sub');
    mkdirSync(sub, { recursive: true });
    const write = (name: string, v: unknown) => { const p = join(sub, name); writeFileSync(p, JSON.stringify(v)); return p; };
    await expect(viz(['--examples', write('mixed.json', [{ capture: capFile, tokens: [3, 'red'] }])])).rejects.toThrow(/examples\[0\]\.tokens must be a list/);
    await expect(viz(['--examples', write('str.json', [{ capture: capFile, tokens: 'red' }])])).rejects.toThrow(/tokens must be a list/);
    await expect(viz(['--examples', write('key.json', [{ capture: capFile, tokenz: ['red'] }])])).rejects.toThrow(/unknown key\(s\) "tokenz"/);
    await expect(viz(['--examples', write('label.json', [{ capture: capFile, label: 3 }])])).rejects.toThrow(/label must be a string/);
    // An absolute capture path is used as it is (it was glued onto the spec's folder).
    const d = JSON.parse(await viz(['--examples', write('abs.json', [{ capture: capFile, tokens: ['red'] }, { capture: capFile, tokens: ['blue'] }]), '--out', join(dir, 'absheads'), '--json']));
    expect(d.examples).toBe(2);
  }, 60_000);
});

describe('vlm-attention viz: captures too large for one page', () => {
  const title = 'vlm-attention viewer: scene';
  const withLimit = async <T>(limit: number, f: () => Promise<T>): Promise<T> => {
    process.env.VLM_ATTENTION_VIEWER_MAX_CHARS = String(limit);
    try { return await f(); } finally { delete process.env.VLM_ATTENTION_VIEWER_MAX_CHARS; }
  };

  it('a capture whose page would be too long: viewer.html skipped with a one-line note naming `vlm-attention view`, PNGs and index.html still written', async () => {
    const out = join(dir, 'too-big');
    // A real one is ~400 MB (V8's longest string is 2^29 − 24 characters); the hook lowers the limit instead.
    const s = JSON.parse(await withLimit(1000, () => viz([capFile, '--out', out, '--tokens', 'red', '--json'])));
    expect(existsSync(join(out, 'viewer.html'))).toBe(false);
    expect(s.viewer).toBeNull();
    expect(s.notices.length).toBe(1);
    expect(s.notices[0]).toMatch(/^viewer\.html not written: .* over the 1000 one page can hold; view it with `vlm-attention view \/.*scene\.vlmcap\.safetensors`$/);
    expect(s.notices[0]).not.toContain('\n');
    for (const m of s.maps) expect(existsSync(m.file)).toBe(true);
    expect(existsSync(join(out, 'heads.png'))).toBe(true);
    const index = readFileSync(join(out, 'index.html'), 'utf8');
    expect(index).not.toContain('href="viewer.html');
    expect(index).toContain('viewer.html not written');
    expect(index).toContain('<code>vlm-attention view ');
    expect(s.files).toEqual(expect.arrayContaining([join(out, 'index.html')]));
  }, 60_000);

  it('where the capture file itself would not fit but f16 does, viewer.html embeds f16 (the viewer decodes it) and says so', async () => {
    const html = loadViewerHtml();
    const f16 = encodedCaptureBytes(capture, { dtype: 'f16' });
    const file = statSync(capFile).size;
    const limit = embeddedLength(html, f16, title);
    expect(limit).toBeLessThan(embeddedLength(html, file, title));
    const out = join(dir, 'f16-embed');
    const s = JSON.parse(await withLimit(limit, () => viz([capFile, '--out', out, '--tokens', 'red', '--json'])));
    expect(s.viewer).toBe(join(out, 'viewer.html'));
    expect(s.notices).toEqual([expect.stringMatching(/f16/)]);
    const page = readFileSync(join(out, 'viewer.html'), 'utf8');
    expect(page.length).toBeLessThanOrEqual(limit);
    const b64 = /<script id="vlm-capture" type="application\/octet-stream;base64">([^<]+)<\/script>/.exec(page)![1]!;
    const bytes = new Uint8Array(Buffer.from(b64, 'base64'));
    expect(parseSafetensors(bytes).tensors.get('attention.0')!.dtype).toBe('f16');
    expect(decodeCapture(bytes).info).toEqual(capture.info);
    // Without the hook, the file's own bytes are embedded as they are (no re-encoding, no note).
    const plain = JSON.parse(await viz([capFile, '--out', join(dir, 'plain-embed'), '--tokens', 'red', '--json']));
    expect(plain.notices).toEqual([]);
    const b64b = /base64">([^<]+)<\/script>/.exec(readFileSync(join(dir, 'plain-embed', 'viewer.html'), 'utf8'))![1]!;
    expect(Buffer.from(b64b, 'base64').equals(readFileSync(capFile))).toBe(true);
  }, 60_000);

  it('chooseViewerEmbed decides from sizes alone: file bytes, f32, f16, or a skip naming the command', () => {
    const html = '<html><!--VLM-ATTENTION-CAPTURE--></html>';
    const f32 = encodedCaptureBytes(capture), f16 = encodedCaptureBytes(capture, { dtype: 'f16' });
    const at = (n: number) => embeddedLength(html, n, 't');
    const src = new Uint8Array(f32);
    expect(chooseViewerEmbed(capture, src, html, 't', at(f32), 'vlm-attention view x')).toEqual({ bytes: expect.any(Function) });
    const synth = chooseViewerEmbed(capture, null, html, 't', at(f32), 'v');
    expect('bytes' in synth && synth.bytes().length).toBe(f32);
    const half = chooseViewerEmbed(capture, null, html, 't', at(f16), 'v');
    expect('bytes' in half && half.note).toMatch(/f16/);
    expect('bytes' in half && half.bytes().length).toBe(f16);
    const skip = chooseViewerEmbed(capture, src, html, 't', at(f16) - 1, 'vlm-attention view --synthetic --seed 5');
    expect(skip).toEqual({ skip: expect.stringMatching(/`vlm-attention view --synthetic --seed 5`$/) });
    expect(shellQuote('/tmp/a b/it\'s.vlmcap.safetensors')).toBe(`'/tmp/a b/it'\\''s.vlmcap.safetensors'`);
    expect(shellQuote('/tmp/plain.vlmcap.safetensors')).toBe('/tmp/plain.vlmcap.safetensors');
  });

  it('f16 only where every value fits it: attention past 65504 (Infinity in f16, which the page refuses) skips viewer.html with the reason', () => {
    const html = '<html><!--VLM-ATTENTION-CAPTURE--></html>';
    const { numHeads: H, seqLen: S } = capture.info, Q = capture.info.queryPositions.length;
    const big = makeCapture({
      tokens: capture.info.tokens, grid: capture.info.grid, imageSpan: capture.info.imageSpan,
      attention: capture.attention.map((a) => ({ dtype: 'f32' as const, shape: [H, Q, S], data: Float32Array.from(a, (v) => v * 1e6) })),
    });
    const f16 = encodedCaptureBytes(big, { dtype: 'f16' });
    const r = chooseViewerEmbed(big, null, html, 't', embeddedLength(html, f16, 't'), 'vlm-attention view big');
    expect(r).toEqual({ skip: expect.stringMatching(/past f16's range \(65504\); view it with `vlm-attention view big`$/) });
  });

  it('embeddedLength is the length of the page embedCapture builds, the replaced <title> counted once', () => {
    const html = '<!doctype html><title>vlm-attention viewer (long old title)</title><!--VLM-ATTENTION-CAPTURE-->';
    for (const [n, title] of [[0, undefined], [1, 'x'], [10, 'a <b> & "c"'], [301, 'vlm-attention viewer: scene']] as const) {
      expect(embeddedLength(html, n, title), `${n} ${title}`).toBe(embedCapture(html, new Uint8Array(n), title).length);
    }
    expect(embeddedLength(loadViewerHtml(), 7, 't')).toBe(embedCapture(loadViewerHtml(), new Uint8Array(7), 't').length);
  });
});

describe('vlm-attention viz: map details', () => {
  it('--positions refuses a repeated position (with --combine it counted twice), as --layers does', async () => {
    const red = capture.info.tokens.lastIndexOf('red');
    await expect(viz([capFile, '--positions', `${red},${red}`, '--combine', '--out', join(dir, 'e')])).rejects.toMatchObject({ name: 'ShapeError', argument: '--positions', message: expect.stringMatching(new RegExp(`--positions contains ${red} twice`)) });
    await expect(viz([capFile, '--layers', '1,1', '--tokens', 'red', '--out', join(dir, 'e')])).rejects.toThrow(/layers contains 1 twice/);
  });

  it('gallery images have alt text; an all-zero map reports no hottest patch (its argmax is only the first of equals)', async () => {
    const a = randomAttention(2, 12, 12, 3);
    for (let h = 0; h < 2; h++) { const o = (h * 12 + 11) * 12; a.fill(0, o, o + 12); a[o] = 1; } // "dog" attends to <bos> only
    const zero = join(dir, 'zero.vlmcap.safetensors');
    await writeCapture(zero, makeCapture({ tokens: ['<bos>', ...Array.from({ length: 9 }, (_, i) => `<img ${i}>`), 'big', 'dog'], grid: [3, 3], imageSpan: [1, 10], attention: [ndarrayFromValues(a, [2, 12, 12])] }));
    const out = join(dir, 'zero-out');
    const text = await viz([zero, '--out', out, '--modes', 'raw', '--no-html']);
    expect(text).toMatch(/"dog"\s+no image attention \(all zero\)/);
    expect(text).toMatch(/"big"\s+hottest patch \(\d, \d\)/);
    const index = readFileSync(join(out, 'index.html'), 'utf8');
    expect(index).not.toContain('alt=""');
    expect(index).toContain('alt="raw attention of &quot;dog&quot; over the image, no image attention (all zero)"');
    expect(index).toMatch(/alt="raw attention of &quot;big&quot; over the image, hottest at patch row \d, col \d"/);
    expect(index).toMatch(/<img src="heads\.png" alt="Head importance \([a-z]+\) as a grid: one row per layer \(0–0\), one column per head \(0–1\)/);
    expect(readdirSync(out).filter((f) => f.endsWith('.png')).length).toBe(4); // <bos>, big, dog and heads.png
  });
});

describe('vlm-attention view flags', () => {
  it('--seed without --synthetic is refused (it seeds the synthetic scene only)', async () => {
    await expect(startView([capFile, '--seed', '5', '--port', '0'], () => undefined)).rejects.toThrow(/--seed does nothing without --synthetic/);
  });
});

describe('vlm-attention view', () => {
  it('prints a 127.0.0.1 URL and serves the page and the API', async () => {
    const lines: string[] = [];
    const server = await startView([capFile, '--port', '0'], (l) => lines.push(l));
    try {
      expect(lines[0]).toMatch(/^vlm-attention viewer: http:\/\/127\.0\.0\.1:\d+\/ /);
      const page = await fetch(server.url);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('<canvas id="canvas"');
      const red = capture.info.tokens.lastIndexOf('red');
      const m = await (await fetch(`${server.url}api/map?tokens=${red}&mode=rollout`)).json();
      const ref = tokenMap(capture, [red], { mode: 'rollout' });
      expect(m.argmax).toEqual(ref.argmax);
      const bad = await fetch(`${server.url}api/map?tokens=${red}&heads=12`);
      expect(bad.status).toBe(400);
      expect((await bad.json()).message).toMatch(/heads contains 12/);
    } finally {
      await server.close();
    }
    await expect(startView([capFile, '--port', 'x'])).rejects.toThrow(UsageError);
    await expect(startView([join(dir, 'nope')])).rejects.toThrow(FormatError);
    const j: string[] = [];
    const s2 = await startView(['--synthetic', '--json'], (l) => j.push(l));
    expect(JSON.parse(j[0]!).url).toBe(s2.url);
    await s2.close();
  }, 60_000);
});
