import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { relevancePrecision } from '../../relevance/pipeline.js';
import { type Scene, demoScene, generateScene } from '../../relevance/scene.js';
import { type Command, UsageError, progress, cliNumber } from '../command.js';
import { RELEVANCE_FLAGS, SHARED_OPTIONS, SHARED_USAGE, jobSummary, optionsFromFlags, printJob, runJob } from './run.js';

const usage = `vlm-attention demo [--query TEXT] [--seed N] [flags]
Runs the whole relevance pipeline on a built-in procedural scene (objects of several colours and
textures, with known masks): prints the allocation table and the latency budget, and writes
heatmaps, the allocation overlay, report.html (linking viewer.html, the interactive viewer with
the capture embedded) and the capture file to ./vlm-attention-out/.
Defaults: query "red striped", 784×784 scene, 7x7 regions, budget 1600, min 16 (for the demo these
replace the --regions and --min defaults listed below, which are those of \`run\`).
  --seed N              a random procedural scene instead of the built-in one
${SHARED_USAGE}`;

/**
 * How the report and stdout name the scene. The built-in one is seed 7 with a fixed object list, so "seed 7" was
 * untrue of it: `--seed 7` draws six random objects, another scene.
 */
export function sceneSource(seed?: number): string {
  return seed === undefined ? 'the built-in procedural scene' : `a random procedural scene (seed ${seed})`;
}

/** Which objects a lexicon query names: colour words and (for striped/patterned words) patterned objects. */
function namedObjects(scene: Scene, words: string[]): Scene['objects'] {
  const colours = words.filter((w) => scene.objects.some((o) => o.colour === w));
  const patterned = words.some((w) => w === 'striped');
  return scene.objects.filter((o) => (colours.length === 0 || colours.includes(o.colour)) && (!patterned || o.texture !== 'solid') && (colours.length > 0 || patterned));
}

const command: Command = {
  summary: 'run the whole relevance pipeline on a built-in procedural scene (no arguments needed)',
  flags: RELEVANCE_FLAGS,
  usage,
  async run(argv) {
    const { values } = parseArgs({ args: argv, options: { seed: { type: 'string' }, ...SHARED_OPTIONS }, strict: true });
    let scene: Scene, seed: number | undefined;
    if (values.seed !== undefined) {
      seed = cliNumber(values.seed);
      if (!Number.isInteger(seed)) throw new UsageError(`--seed must be an integer, got '${values.seed}'`);
      scene = generateScene({ seed });
    } else scene = demoScene();
    progress(!values.json)('generated the procedural scene', 1);
    const options = optionsFromFlags(values, {
      query: 'red striped', budget: 1600, min: 16, grid: { regionRows: 7, regionCols: 7 },
    });
    const masks = Object.fromEntries(scene.objects.map((o) => [o.name.replace(/ /g, '_'), o.mask]));
    const notes = [`Scene objects: ${scene.objects.map((o) => o.name).join('; ')}.`];
    // Absolute, so that the report's `vlm-attention view <capture>` works from any directory.
    const job = await runJob(scene.rgba, options, resolve(values.out!), !!values.json, { title: 'vlm-attention demo', source: sceneSource(seed), notes, masks });
    const words = job.result.plan.lexicon?.tokens.flatMap((t) => t.words) ?? [];
    const named = namedObjects(scene, words);
    const precision = named.map((o) => {
      const p = relevancePrecision(job.result.allocation.tokens, job.result.plan.grid, o.mask);
      return { object: o.name, precision: p.precision, uniform: p.uniformPrecision, ratio: p.uniformPrecision > 0 ? p.precision / p.uniformPrecision : null };
    });
    if (values.json) {
      console.log(JSON.stringify({ ...jobSummary(job.result, job.warmupMs), scene: { builtIn: seed === undefined, ...(seed === undefined ? {} : { seed }), objects: scene.objects.map((o) => o.name) }, precision, files: job.files, wallMs: job.wallMs }, null, 2));
      return;
    }
    console.log(`scene (${seed === undefined ? 'built-in' : `random, seed ${seed}`}): ${scene.objects.map((o) => o.name).join('; ')}`);
    printJob(job, values.out!);
    for (const p of precision) console.log(`relevance precision for '${p.object}': ${(100 * p.precision).toFixed(1)}% of the budget on its regions (uniform ${(100 * p.uniform).toFixed(1)}%, ${p.ratio?.toFixed(2)}×)`);
  },
};
export default command;
