import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { deflateSync } from 'node:zlib';
import { parseArgs } from 'node:util';
import { attention } from '../../attention/attention.js';
import type { BackendName } from '../../attention/backend.js';
import { type RelevanceOptions, type RelevanceResult, formatLatencyTable, latencyTable, planRelevance, runRelevance } from '../../relevance/pipeline.js';
import { parseQuery } from '../../relevance/lexicon.js';
import { buildRelevanceCapture, formatAllocationTable, gridImage, masksToGrid, renderHtmlReport, renderRelevancePngs } from '../../relevance/report.js';
import { DEFAULT_LEVELS } from '../../relevance/allocate.js';
import { randn } from '../../tensor/tensor.js';
import { encodePng, type RgbaImage } from '../../viz/png.js';
import { embedCapture, loadViewerHtml } from '../../viz/viewer-html.js';
import { ensureDir } from '../../viz/node-files.js';
import { UnsupportedError } from '../../errors.js';
import { type Command, UsageError, progress, cliNumber } from '../command.js';

/** Flags shared by `run` and `demo`. */
/** Library argument names that relevance flags of another name set (Command.flags). */
export const RELEVANCE_FLAGS: Readonly<Record<string, string>> = { lodAttention: 'lod', regionRows: 'regions', regionCols: 'regions', allowDrop: 'allow-drop', dir: 'out' };

export const SHARED_OPTIONS = {
  query: { type: 'string' }, budget: { type: 'string' }, allocator: { type: 'string' },
  min: { type: 'string' }, max: { type: 'string' }, quantum: { type: 'string' }, 'allow-drop': { type: 'boolean', default: false },
  regions: { type: 'string' }, 'region-patches': { type: 'string' }, 'patch-size': { type: 'string' }, 'max-side': { type: 'string' },
  weights: { type: 'string' }, temperature: { type: 'string' }, explore: { type: 'string' }, bandwidth: { type: 'string' },
  backend: { type: 'string', default: 'auto' }, lod: { type: 'string' }, out: { type: 'string', default: 'vlm-attention-out' },
  json: { type: 'boolean', default: false },
} as const;

export const SHARED_USAGE = `  --query TEXT          concept-lexicon query (colours, bright/dark, edges/smooth/striped, left/right/top/bottom/centre)
  --budget N            total visual tokens (default 1600)
  --allocator A         water-fill (default) | levels
  --min M --max M --quantum Q   allocator A bounds (defaults 64, 400, 16)
  --allow-drop          allow level 0 (drop regions)
  --regions RxC         region grid (default 4x4) | --region-patches K (K×K base patches per region)
  --patch-size P        base patch in image pixels, after --max-side (default 14); --max-side S (default 1024)
  --weights I,S,P       opponent mix (default 0.15,0.15,0.7); --temperature T (0.5); --explore E (0.05)
  --bandwidth S         lexicon kernel bandwidth (default 0.12)
  --backend B           attention backend: auto | wasm | cpu-ts | webgpu
  --lod MODE            per-region (default) | with-query | none
  --out DIR             output folder (default ./vlm-attention-out)
  --json                machine-readable output on stdout`;

type Values = { [K in keyof typeof SHARED_OPTIONS]?: (typeof SHARED_OPTIONS)[K]['type'] extends 'boolean' ? boolean : string };

function num(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  if (v.trim() === '') throw new UsageError(`--${flag} needs a value`);
  return cliNumber(v); // NaN and friends go on to the library, which names the argument

}

/** Flags → pipeline options (numbers are passed through; the library validates them). */
export function optionsFromFlags(values: Values, defaults: Partial<RelevanceOptions> = {}): RelevanceOptions {
  if (values.query === undefined && defaults.query === undefined) throw new UsageError('--query is required');
  const grid = { ...(defaults.grid ?? {}) };
  if (values.regions !== undefined && values['region-patches'] !== undefined) throw new UsageError('--regions and --region-patches both set the region grid: give one');
  // --min/--max/--quantum bound the water-fill allocator; the levels allocator uses its level set (DEFAULT_LEVELS).
  if (values.allocator === 'levels') {
    const bounds = (['min', 'max', 'quantum'] as const).filter((f) => values[f] !== undefined);
    if (bounds.length) throw new UsageError(`${bounds.map((f) => `--${f}`).join(', ')} bound${bounds.length > 1 ? '' : 's'} the water-fill allocator; --allocator levels uses its levels ${DEFAULT_LEVELS.join(', ')}`);
  }
  if (values.regions !== undefined) {
    const m = /^(\d+)\s*[x×,]\s*(\d+)$/.exec(values.regions);
    if (!m) throw new UsageError(`--regions must look like 4x4, got '${values.regions}'`);
    Object.assign(grid, { regionRows: Number(m[1]), regionCols: Number(m[2]), regionPatches: undefined });
  }
  if (values['region-patches'] !== undefined) Object.assign(grid, { regionPatches: num(values['region-patches'], 'region-patches'), regionRows: undefined, regionCols: undefined });
  if (values['patch-size'] !== undefined) grid.patchSize = num(values['patch-size'], 'patch-size');
  if (values['max-side'] !== undefined) grid.maxSide = num(values['max-side'], 'max-side');
  const opponent = { ...(defaults.opponent ?? {}) };
  if (values.weights !== undefined) {
    const w = values.weights.split(',').map((s) => num(s, 'weights')!);
    if (w.length !== 3) throw new UsageError(`--weights needs three numbers I,S,P, got '${values.weights}'`);
    opponent.weights = w as [number, number, number];
  }
  if (values.temperature !== undefined) opponent.temperature = num(values.temperature, 'temperature');
  if (values.explore !== undefined) opponent.explore = num(values.explore, 'explore');
  const pick = <T,>(v: T | undefined, d: T | undefined) => (v === undefined ? d : v);
  // A command's water-fill defaults (demo's min 16) do not apply under the levels allocator, which refuses them.
  const bound = (f: 'min' | 'max' | 'quantum') => (values.allocator === 'levels' ? undefined : pick(num(values[f], f), defaults[f]));
  const { min: _min, max: _max, quantum: _quantum, ...rest } = defaults;
  return {
    ...rest,
    query: values.query ?? defaults.query!,
    budget: pick(num(values.budget, 'budget'), defaults.budget),
    allocator: pick(values.allocator as RelevanceOptions['allocator'], defaults.allocator),
    min: bound('min'), max: bound('max'), quantum: bound('quantum'),
    allowDrop: values['allow-drop'] || defaults.allowDrop,
    bandwidth: pick(num(values.bandwidth, 'bandwidth'), defaults.bandwidth),
    backend: (values.backend ?? defaults.backend) as BackendName,
    lodAttention: pick(values.lod as RelevanceOptions['lodAttention'], defaults.lodAttention),
    grid, opponent,
  };
}

/** What a job produced. */
export interface JobOutput {
  result: RelevanceResult;
  files: string[];
  warmupMs: number;
  wallMs: number;
}

/**
 * Runs the pipeline on a decoded image and writes the outputs: heatmaps, allocation overlay, HTML
 * report, capture file and result.json.
 */
export async function runJob(image: RgbaImage, options: RelevanceOptions, out: string, json: boolean, ctx: { title: string; source: string; notes?: string[]; masks?: Record<string, Uint8Array>; extra?: Record<string, unknown> }): Promise<JobOutput> {
  const t0 = performance.now();
  const say = progress(!json);
  const plan = planRelevance(image.width, image.height, { ...options, onProgress: (stage, f) => say(`relevance: ${stage}`, f) });
  // Warm the attention backend (thread pool, WebAssembly compile, GPU device) outside the timings.
  say('warming up the attention backend');
  const tw = performance.now();
  await attention(randn([1, 8, 1, 16], 1), randn([1, 8, 1, 16], 2), randn([1, 8, 1, 16], 3), { backend: options.backend });
  const warmupMs = performance.now() - tw;
  const result = await runRelevance(image, plan);
  say('rendering heatmaps and the allocation overlay', 0);
  const pngs = renderRelevancePngs(result, image, 1024, { level: 3, deflate: (d, level) => deflateSync(d, { level }) });
  say('rendering heatmaps and the allocation overlay', 1);
  const dir = resolve(out);
  await ensureDir(dir);
  const files: string[] = [];
  const write = async (name: string, data: Uint8Array | string) => { const p = join(dir, name); await writeFile(p, data); files.push(p); };
  for (const [name, bytes] of Object.entries(pngs)) await write(name, bytes);
  let viewer: { href?: string; capture?: string } | undefined;
  if (result.plan.lexicon) {
    say('writing the capture file and the viewer page');
    const masks = ctx.masks ? masksToGrid(result, ctx.masks) : undefined;
    // The capture's image is the grid's crop, so the viewer's maps sit on the pixels they describe.
    const { crop } = result.plan.grid;
    const whole = crop.x === 0 && crop.y === 0 && crop.width === image.width && crop.height === image.height;
    const imagePng = whole ? pngs['image.png'] : encodePng(gridImage(result, image, 1024), { level: 3, deflate: (d, level) => deflateSync(d, { level }) });
    const capture = await buildRelevanceCapture(result, imagePng, masks);
    const captureName = 'capture.vlmcap.safetensors';
    await write(captureName, capture);
    viewer = { capture: join(dir, captureName) }; // absolute: the report's `view` command works from any folder
    try {
      await write('viewer.html', embedCapture(loadViewerHtml(), capture, `${ctx.title} — viewer`));
      viewer.href = 'viewer.html';
    } catch (e) {
      if (!(e instanceof UnsupportedError)) throw e;
      say(`viewer page not written: ${e.message}`);
    }
  }
  const html = renderHtmlReport(result, pngs, { title: ctx.title, source: ctx.source, notes: ctx.notes, backend: String(options.backend ?? 'auto'), viewer });
  await write('report.html', html);
  const summary = jobSummary(result, warmupMs, ctx.extra);
  await write('result.json', JSON.stringify(summary, null, 2) + '\n');
  return { result, files, warmupMs, wallMs: performance.now() - t0 };
}

/** The machine-readable summary (also result.json). */
export function jobSummary(result: RelevanceResult, warmupMs: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const g = result.plan.grid;
  return {
    image: { width: g.imageWidth, height: g.imageHeight },
    grid: { patchSize: g.patchSize, gridRows: g.gridRows, gridCols: g.gridCols, regionRows: g.regionRows, regionCols: g.regionCols },
    query: result.plan.lexicon ? { text: result.plan.lexicon.text, tokens: result.plan.lexicon.tokens.map((t) => t.words), ignored: result.plan.lexicon.unknownWords } : 'embeddings',
    budget: result.plan.budget,
    allocator: result.allocation.method,
    opponent: { weights: result.opponent.weights, temperature: result.opponent.temperature, explore: result.opponent.explore },
    regions: g.regions.map((r) => ({
      region: r.index, row: r.row, col: r.col, tokens: result.allocation.tokens[r.index], grid: result.tokens.shapes[r.index],
      information: result.scores.information[r.index], salience: result.scores.salience[r.index], participatory: result.scores.participatory[r.index], rho: result.opponent.rho[r.index],
    })),
    total: result.allocation.total,
    dropped: result.allocation.dropped,
    tokens: result.tokens.count,
    latency: latencyTable(result.timings),
    backendWarmupMs: warmupMs,
    ...extra,
  };
}

/** Prints the human summary. */
export function printJob(job: JobOutput, out: string): void {
  const { result } = job;
  console.log(formatAllocationTable(result));
  console.log('');
  console.log(formatLatencyTable(latencyTable(result.timings)));
  console.log(`(one cold run: JIT warm-up included; backend start-up ${job.warmupMs.toFixed(1)} ms not counted; steady state: npm run bench:relevance)`);
  console.log(`(wall time ${(job.wallMs / 1000).toFixed(2)} s including rendering and writing)`);
  console.log(`\nwrote ${job.files.length} files to ${resolve(out)}: ${job.files.map((f) => f.split(/[\\/]/).pop()).join(', ')}`);
}

const usage = `vlm-attention run --image FILE --query TEXT [--budget N] [flags]
Scores the image's regions against the query, allocates the token budget, realises the tokens and
writes heatmaps, the allocation overlay, report.html, viewer.html, a capture file and result.json.
${SHARED_USAGE}`;

const command: Command = {
  summary: 'relevance-driven token allocation for an image and a query (writes heatmaps + report)',
  flags: RELEVANCE_FLAGS,
  usage,
  async run(argv) {
    const { values } = parseArgs({ args: argv, options: { image: { type: 'string' }, ...SHARED_OPTIONS }, strict: true });
    if (!values.image) throw new UsageError('--image is required (PNG, JPEG, WebP, …)');
    const options = optionsFromFlags(values as Values);
    // Validate the query and knobs before decoding (cheap errors first).
    if (typeof options.query === 'string') parseQuery(options.query);
    const say = progress(!values.json);
    say(`decoding ${values.image}`);
    const { decodeImage } = await import('../../io/image.js'); // sharp loads only when needed
    const image = await decodeImage(values.image);
    const job = await runJob(image, options, values.out!, !!values.json, { title: `vlm-attention run: “${String(options.query)}”`, source: values.image });
    if (values.json) console.log(JSON.stringify({ ...jobSummary(job.result, job.warmupMs), files: job.files, wallMs: job.wallMs }, null, 2));
    else printJob(job, values.out!);
  },
};
export default command;
