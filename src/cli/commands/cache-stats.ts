import { parseArgs } from 'node:util';
import {
  type KvCacheStats, type KvDType, OutOfBlocksError, formatBytesSI, kvVariants, parseByteSize, planKvCache, simulateImagePrefix, simulateServing, simulateWaste,
} from '../../index.js';
import { type Command, UsageError, progress, cliNumber, refuseFlags } from '../command.js';

const usage = `vlm-attention cache-stats [--workload serving|image-prefix|waste] [--layers L] [--heads H] [--kv-heads Hk]
                           [--head-dim D] [--dtype f16|f32|int8] [--block-size 16] [--blocks N | --memory 4GB]
                           [--requests N] [--images N] [--prompts N] [--image-tokens N] [--seed S] [--json]
Runs a built-in simulated workload on a paged KV cache (metadata only: no K/V memory is allocated)
and prints pool statistics: utilisation, fragmentation, sharing savings, prefix-cache hit rate,
evictions and copy-on-writes, plus KV bytes per token for MHA, GQA and MQA.

Workloads:
  serving       continuous batching of [system][image][question] requests with popular images,
                2 parallel samples per request (forks), occasional rollbacks (default; --requests,
                default 200, over --images, default 20)
  image-prefix  every image × prompt once (--images × --prompts, default 10 × 10), image-first and
                prompt-first layouts
  waste         1,000 sequences with lengths uniform in 1..4,096: paged vs contiguous reservation`;

function pct(x: number): string {
  return `${(x * 100).toFixed(2)} %`;
}

function statsLines(s: KvCacheStats): string[] {
  return [
    `  blocks        ${s.totalBlocks} total: ${s.usedBlocks} used, ${s.cachedBlocks} cached, ${s.freeBlocks} free (block = ${s.blockSizeTokens} tokens, ${formatBytesSI(s.bytesPerBlock)})`,
    `  utilisation   ${pct(s.utilisation)} (${formatBytesSI(s.usedBytes)} of ${formatBytesSI(s.totalBytes)})`,
    `  sequences     ${s.liveSequences} live, ${s.liveTokens} tokens`,
    `  fragmentation ${pct(s.fragmentation)} of allocated slots unused (${s.slotsAllocated - s.slotsFilled} of ${s.slotsAllocated})`,
    `  sharing       ${s.sharedBlocks} blocks shared; saves ${s.sharingSavedBlocks} blocks (${formatBytesSI(s.sharingSavedBytes)}) of ${s.logicalBlocks} logical`,
    `  prefix cache  ${pct(s.prefix.hitRate)} hit rate (${s.prefix.hitBlocks} of ${s.prefix.queriedBlocks} prompt blocks)`,
    `  churn         ${s.evictions} evictions, ${s.copyOnWrites} copy-on-writes`,
  ];
}

const command: Command = {
  summary: 'simulate a paged KV-cache workload and print pool statistics',
  usage,
  // Library errors name these arguments; the CLI reports them as the flags that set them (exit 2).
  flags: { capacityBytes: 'memory', numBlocks: 'blocks', blockSizeTokens: 'block-size', numLayers: 'layers', numKvHeads: 'kv-heads', headDim: 'head-dim', numRequests: 'requests', numImages: 'images', numPrompts: 'prompts', imageTokens: 'image-tokens' },
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: {
        workload: { type: 'string', default: 'serving' },
        layers: { type: 'string', default: '28' }, heads: { type: 'string', default: '28' }, 'kv-heads': { type: 'string', default: '4' },
        'head-dim': { type: 'string', default: '128' }, dtype: { type: 'string', default: 'f16' }, 'block-size': { type: 'string', default: '16' },
        blocks: { type: 'string' }, memory: { type: 'string' }, requests: { type: 'string' }, images: { type: 'string' }, prompts: { type: 'string' },
        'image-tokens': { type: 'string', default: '576' }, seed: { type: 'string', default: '1' }, json: { type: 'boolean', default: false },
      },
    });
    // Workload-specific flags: a flag the chosen workload has no use for is refused, not ignored.
    const wants: Record<string, string[]> = { serving: ['requests', 'images'], 'image-prefix': ['images', 'prompts'], waste: [] };
    for (const f of ['requests', 'images', 'prompts'] as const) {
      if (values[f] !== undefined && wants[values.workload]?.includes(f) === false) throw new UsageError(`--${f} does not apply to --workload ${values.workload}`);
    }
    if (!['serving', 'image-prefix', 'waste'].includes(values.workload!)) throw new UsageError(`--workload must be serving, image-prefix or waste, got ${values.workload}`);
    if (values.workload === 'waste') refuseFlags(argv, ['layers', 'heads', 'kv-heads', 'head-dim', 'dtype', 'blocks', 'memory', 'image-tokens'], 'with --workload waste (it uses --block-size and --seed)');
    const defaults: Record<string, string> = { requests: '200', images: values.workload === 'image-prefix' ? '10' : '20', prompts: '10' };
    const int = (name: string, min = 1) => {
      const v = (values[name as keyof typeof values] as string | undefined) ?? defaults[name]!;
      const n = cliNumber(v);
      if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name} must be an integer ≥ ${min}, got ${v}`);
      return n;
    };
    const dtype = values.dtype as KvDType;
    if (!['f16', 'f32', 'int8'].includes(dtype)) throw new UsageError(`--dtype must be f16, f32 or int8, got ${values.dtype}`);
    if (values.blocks !== undefined && values.memory !== undefined) throw new UsageError('give --blocks or --memory, not both');
    const model = { numLayers: int('layers'), numKvHeads: int('kv-heads'), headDim: int('head-dim'), dtype, blockSizeTokens: int('block-size') };
    const heads = int('heads');
    if (heads % model.numKvHeads !== 0) throw new UsageError(`--heads (${heads}) must be a multiple of --kv-heads (${model.numKvHeads})`);
    const sizing = values.memory !== undefined ? { capacityBytes: parseByteSize(values.memory, '--memory') } : { numBlocks: values.blocks !== undefined ? int('blocks') : 2048 };
    const plan = planKvCache({ ...model, ...sizing, allocateStorage: false });
    const seed = int('seed', 0);
    const variants = kvVariants({ numLayers: model.numLayers, numHeads: heads, numKvHeads: model.numKvHeads, headDim: model.headDim, dtype, seqLen: 4096, blockSizeTokens: model.blockSizeTokens });
    const say = progress(!values.json);
    // image-prefix without --blocks/--memory sizes its own pool (below): the header leaves the pool to that line.
    const ownPool = values.workload === 'image-prefix' && values.blocks === undefined && values.memory === undefined;
    const header = [
      `KV cache: ${model.numLayers} layers × ${model.numKvHeads} KV heads × headDim ${model.headDim}, ${dtype}, blocks of ${model.blockSizeTokens} tokens (${formatBytesSI(plan.bytesPerBlock)})${ownPool ? '' : `; pool ${plan.numBlocks} blocks = ${formatBytesSI(plan.numBlocks * plan.bytesPerBlock)}`}`,
      'KV bytes per token / per 4,096-token sequence:',
      ...variants.map((r) => `  ${r.variant.padEnd(4)} ${String(r.numKvHeads).padStart(3)} KV heads  ${formatBytesSI(r.bytesPerToken).padStart(10)}/token  ${formatBytesSI(r.bytesPerSequence).padStart(10)}/sequence  ${r.reduction.toFixed(1)}× vs MHA`),
    ];

    // A pool too small for one request of the workload is a usage problem (--blocks/--memory), not a crash.
    const sim = <T>(f: () => T): T => {
      try {
        return f();
      } catch (e) {
        if (e instanceof OutOfBlocksError) throw new UsageError(`the pool of ${plan.numBlocks} blocks cannot hold this workload (${e.message.split(';')[0]}); give a larger one with --blocks or --memory`);
        throw e;
      }
    };
    if (values.workload === 'serving') {
      say('simulating serving workload');
      const r = sim(() => simulateServing({ ...model, numBlocks: plan.numBlocks, numRequests: int('requests'), numImages: int('images'), imageTokens: int('image-tokens'), seed }));
      say('simulating serving workload', 1);
      if (values.json) { console.log(JSON.stringify({ workload: 'serving', model, plan, variants, report: r }, null, 2)); return; }
      console.log([
        ...header, '',
        `Serving: ${r.completed === r.requests ? r.requests : `${r.completed} of ${r.requests}`} requests ([system 32][image ${int('image-tokens')}][question 8–64], ${int('images')} images with Zipf popularity, 2 samples each) in ${r.steps} steps; ${r.deferred} waited for memory`,
        ...(r.completed < r.requests ? [`  the simulation stopped at its step limit with ${r.requests - r.completed} requests unfinished (fewer --requests, or a larger pool, finishes them)`] : []),
        `  prefill computed ${r.prefillTokensComputed} of ${r.prefillTokensRequested} prompt tokens (${pct(1 - r.prefillTokensComputed / Math.max(1, r.prefillTokensRequested))} served from the prefix cache); ${r.tokensGenerated} tokens generated${r.samplesCutShort ? `; ${r.samplesCutShort} samples cut short for want of a block` : ''}`,
        `  at most ${r.peakSequences} samples ran at once`,
        'At peak utilisation:', ...statsLines(r.atPeak),
        'At the end:', ...statsLines(r.final),
      ].join('\n'));
    } else if (values.workload === 'image-prefix') {
      // The model's shape sizes the blocks; the pool is the one --blocks or --memory gives, else one large enough that
      // nothing is evicted (the workload's own default), as the line below says.
      const pool = values.blocks !== undefined || values.memory !== undefined ? { numBlocks: plan.numBlocks } : {};
      const runs = (['image-first', 'prompt-first'] as const).map((order) => sim(() => simulateImagePrefix({ order, numImages: int('images'), numPrompts: int('prompts'), imageTokens: int('image-tokens'), ...model, ...pool, seed })));
      if (values.json) { console.log(JSON.stringify({ workload: 'image-prefix', model, plan: ownPool ? { ...plan, numBlocks: runs[0]!.stats.totalBlocks } : plan, variants, reports: runs }, null, 2)); return; }
      const lines = [...header, `(image-prefix runs on ${'numBlocks' in pool ? 'that pool' : `a pool of ${runs[0]!.stats.totalBlocks} blocks = ${formatBytesSI(runs[0]!.stats.totalBlocks * plan.bytesPerBlock)}, large enough that nothing is evicted (--blocks or --memory sets it)`})`, ''];
      for (const r of runs) {
        lines.push(`${r.order}: ${r.requests} requests over ${int('images')} images × ${int('prompts')} prompts`,
          `  hit rate over shareable blocks ${pct(r.hitRateOfShareable)} (${r.hitBlocks} of ${r.shareableBlocks})`,
          `  image blocks reused after each image's first request: ${r.imageBlocksReused} of ${r.imageBlocksAfterFirst}`,
          `  ${r.order === 'image-first' ? 'text blocks after the image' : 'prompt blocks before the image'} hit: ${r.promptBlocksHit} of ${r.promptBlocksQueried}`,
          `  prefill computed: ${pct(r.computedFraction)} of prompt tokens`, ...statsLines(r.stats), '');
      }
      console.log(lines.join('\n'));
    } else { // 'waste' (the workload was checked above)
      say('simulating 1,000 sequences');
      const r = simulateWaste({ blockSizeTokens: model.blockSizeTokens, seed });
      say('simulating 1,000 sequences', 1);
      const { lengths: _l, ...rest } = r;
      if (values.json) { console.log(JSON.stringify({ workload: 'waste', ...rest }, null, 2)); return; }
      console.log([
        `Memory waste on ${r.expected.sequences} sequences, lengths uniform in 1..${r.expected.contiguous.maxLength} (${r.expected.tokens} tokens):`,
        `  paged (blocks of ${model.blockSizeTokens})       ${pct(r.measured.waste)} unused (${r.measured.allocatedSlots - r.measured.filledSlots} of ${r.measured.allocatedSlots} slots, measured on the pool)`,
        `  contiguous max-length  ${pct(r.expected.contiguous.waste)} unused (${r.expected.contiguous.unusedSlots} of ${r.expected.contiguous.allocatedSlots} slots)`,
      ].join('\n'));
    }
  },
};
export default command;
