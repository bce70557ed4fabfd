/**
 * `vlm-attention demo` and `vlm-attention run`: outputs, --json, and bad input → typed errors with a
 * non-zero exit code and a one-line message (checked on the real CLI in a child process).
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeImage } from '../../../src/io/image.js';
import { generateScene } from '../../../src/relevance/scene.js';
import { FormatError, ValueError } from '../../../src/errors.js';
import { decodePng, encodePng } from '../../../src/viz/png.js';
import { runCommand } from '../../helpers/cli.js';

const exec = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'vlm-relevance-'));
const cliBundle = resolve('node_modules/.cache', `vlm-relevance-cli-${process.pid}.mjs`);
afterAll(() => { rmSync(dir, { recursive: true, force: true }); rmSync(cliBundle, { force: true }); });

const runCmd = async (name: 'demo' | 'run', argv: string[]): Promise<string> => (await runCommand(name, argv)).out;

async function cli(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await exec(process.execPath, [cliBundle, ...argv], { cwd: dir, env: { ...process.env, VLM_ATTENTION_DEBUG: '' } });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

const scene = generateScene({ width: 300, height: 220, seed: 11 });
const pngPath = join(dir, 'scene.png'), jpgPath = join(dir, 'scene.jpg');

beforeAll(async () => {
  writeFileSync(pngPath, encodePng(scene.rgba));
  await sharp(Buffer.from(scene.rgba.data), { raw: { width: 300, height: 220, channels: 4 } }).jpeg({ quality: 92 }).toFile(jpgPath);
  await build({ entryPoints: ['src/cli/main.ts'], bundle: true, platform: 'node', format: 'esm', outfile: cliBundle, packages: 'external', logLevel: 'silent' });
}, 120_000);

describe('image decoding (sharp)', () => {
  it('decodes PNG and JPEG to RGBA like sharp; PNG exactly like our own decoder', async () => {
    const png = await decodeImage(pngPath);
    expect([png.width, png.height]).toEqual([300, 220]);
    expect(Buffer.from(png.data).equals(Buffer.from(decodePng(readFileSync(pngPath)).data))).toBe(true);
    const jpg = await decodeImage(new Uint8Array(readFileSync(jpgPath)));
    expect([jpg.width, jpg.height]).toEqual([300, 220]);
    let err = 0;
    for (let i = 0; i < jpg.data.length; i++) err += Math.abs(jpg.data[i]! - scene.rgba.data[i]!);
    expect(err / jpg.data.length).toBeLessThan(6);
  });

  it('corrupt, truncated, empty and zero-area files raise FormatError', async () => {
    const bytes = readFileSync(jpgPath);
    const trunc = join(dir, 'trunc.jpg');
    writeFileSync(trunc, bytes.subarray(0, Math.floor(bytes.length / 2)));
    await expect(decodeImage(trunc)).rejects.toThrow(FormatError);
    const garbage = join(dir, 'garbage.png');
    writeFileSync(garbage, Buffer.from('this is not an image at all'));
    await expect(decodeImage(garbage)).rejects.toThrow(FormatError);
    await expect(decodeImage(new Uint8Array(0))).rejects.toThrow(/empty/);
    await expect(decodeImage(join(dir, 'missing.png'))).rejects.toThrow(/ENOENT/);
    const pngBytes = readFileSync(pngPath);
    await expect(decodeImage(new Uint8Array(pngBytes.subarray(0, pngBytes.length - 100)))).rejects.toThrow(FormatError);
    await expect(decodeImage('')).rejects.toThrow(ValueError);
  });
});

describe('CLI demo and run', () => {
  it('demo --json runs the whole pipeline and writes heatmaps, overlay, report, capture and result.json', async () => {
    const out = join(dir, 'demo-out');
    const json = JSON.parse(await runCmd('demo', ['--json', '--out', out]));
    expect(json.total).toBe(1600);
    expect(json.regions.length).toBe(49);
    expect(json.precision[0].object).toBe('red striped circle');
    expect(json.precision[0].ratio).toBeGreaterThanOrEqual(2);
    expect(json.latency.map((r: { stage: string }) => r.stage)).toEqual(['texture', 'scoring', 'opponent', 'allocation', 'lod-attention', 'llm', 'total']);
    for (const f of ['image.png', 'heatmap-query.png', 'heatmap-rho.png', 'heatmap-information.png', 'heatmap-salience.png', 'allocation.png', 'report.html', 'viewer.html', 'capture.vlmcap.safetensors', 'result.json']) {
      expect(existsSync(join(out, f)), f).toBe(true);
    }
    expect(decodePng(readFileSync(join(out, 'allocation.png'))).width).toBe(784);
  });

  it('run --image --query --budget works on a JPEG and prints the table and latency budget', async () => {
    const text = await runCmd('run', ['--image', jpgPath, '--query', 'red car', '--budget', '1600', '--regions', '4x4', '--out', join(dir, 'run-out')]);
    expect(text).toMatch(/total 1600 tokens over 16 regions/);
    expect(text).toMatch(/lod-attention/);
    expect(text).toMatch(/wrote 10 files/);
    expect(readFileSync(join(dir, 'run-out', 'report.html'), 'utf8')).toContain('href="viewer.html"');
    expect(readFileSync(join(dir, 'run-out', 'viewer.html'), 'utf8')).toContain('id="vlm-capture"');
  });

  it('bad input exits non-zero with a one-line typed message (real CLI process)', async () => {
    writeFileSync(join(dir, 'corrupt.jpg'), readFileSync(jpgPath).subarray(0, 300));
    writeFileSync(join(dir, 'empty.png'), new Uint8Array(0));
    const cases: Array<[string[], RegExp]> = [
      [['run', '--image', 'corrupt.jpg', '--query', 'red'], /FormatError/],
      [['run', '--image', 'empty.png', '--query', 'red'], /FormatError: image 'empty.png' is empty/],
      [['run', '--image', pngPath, '--query', 'red', '--budget', 'NaN'], /ValueError: budget must be/],
      [['run', '--image', pngPath, '--query', 'red', '--budget=-16'], /ValueError: budget must be/],
      [['run', '--image', pngPath, '--query', 'red', '--budget', '1601'], /InfeasibleError: budget 1601 is not a multiple of quantum 16/],
      [['run', '--image', pngPath, '--query', 'red', '--budget', '320'], /InfeasibleError: 16 regions × minimum 64/],
      [['run', '--image', pngPath, '--query', ''], /ValueError: query must be a non-empty string/],
      [['run', '--image', pngPath, '--query', 'zebra'], /ValueError: query 'zebra' names no known concept/],
      [['run', '--query', 'red'], /UsageError: --image is required/],
      [['demo', '--budget', '17'], /InfeasibleError: .* \(--budget\)$/],
      // Library errors naming a tensor's dimension, an unsupported choice, a missing flag or a knob another flag sets.
      [['attention', '--seq', '8', '--head-dim', '300'], /ShapeError: headDim must be in 1\.\.256, got 300 \(--head-dim\)$/],
      [['attention', '--seq', '8', '--backend', 'foo'], /UnsupportedError: unknown backend 'foo'.* \(--backend\)$/],
      [['attention', '--seq', '8', '--kv-heads', '3'], /ShapeError: numHeads \(16\) must be divisible by numKvHeads \(3\).* \(--kv-heads\)$/],
      [['run', '--image', pngPath, '--query', 'red', '--lod', 'foo'], /ValueError: lodAttention .* \(--lod\)$/],
      [['run', '--image', pngPath, '--query', 'red', '--regions', '0x4'], /ValueError: regionRows .* \(--regions\)$/],
      [['cost', 'tokens', '--tokenizer', 'qwen2-vl', '--image', '0x768'], /ShapeError: image\.width .* \(--image\)$/],
      [['cost', 'budget', '--model', 'qwen2-vl-7b', '--budget', '1600'], /ValueError: tokenizer 'qwen2-vl' needs image .* \(--image\)$/],
      // A negative number after a space reaches the command (parseArgs alone calls it an ambiguous option).
      [['run', '--image', pngPath, '--query', 'red', '--budget', '-16'], /ValueError: budget must be/],
      [['run', '--image', pngPath, '--query', 'red', '--bogus'], /UsageError: Unknown option '--bogus'/],
      // Library errors whose argument a flag of another name set (seqLenQ ← --seq): usage errors naming the flag.
      [['cost', '--seq', '-1', '--heads', '2', '--head-dim', '8'], /ShapeError: seqLenQ must be .* \(--seq\)$/],
      [['cost', '--seq', '4', '--heads', '0', '--head-dim', '8'], /ShapeError: numHeads .* \(--heads\)$/],
      [['cost', '--seq', '4', '--heads', '2', '--head-dim', '8', '--window', '-1'], /ShapeError: attention.window .* \(--window\)$/],
      [['cost', '--seq', '4', '--heads', '2', '--head-dim', '8', '--dtype', 'int8'], /DTypeError: attention.dtype .* \(--dtype\)$/],
      [['cost', 'kv', '--layers', '2', '--kv-heads', '0', '--head-dim', '8', '--seq', '4'], /ShapeError: numKvHeads .* \(--kv-heads\)$/],
      [['cost', '--config', 'no-such.yaml'], /FormatError: cannot read config file/],
    ];
    for (const [argv, msg] of cases) {
      const r = await cli(argv);
      expect(r.code, argv.join(' ')).not.toBe(0);
      // Progress lines may precede it; the error itself is exactly one line, the last one.
      const lines = r.stderr.split('\n').filter((l) => l.trim() !== '' && !/^npm warn/.test(l));
      const errors = lines.filter((l) => l.startsWith('vlm-attention '));
      expect(errors.length, `${argv.join(' ')}: ${r.stderr}`).toBe(1);
      expect(lines.at(-1), argv.join(' ')).toBe(errors[0]);
      expect(errors[0], argv.join(' ')).toMatch(msg);
      // Exit 2 for usage problems: the command's own checks, and library errors naming a flag that was given.
      const usage = /UsageError/.test(msg.source) || /ValueError: budget/.test(msg.source) || /\(--/.test(msg.source);
      if (usage) expect(r.code, argv.join(' ')).toBe(2);
      if (/FormatError/.test(msg.source)) expect(r.code, argv.join(' ')).toBe(1);
    }
  }, 120_000);
});
