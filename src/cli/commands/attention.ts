import { parseArgs } from 'node:util';
import { attention, attentionCost, causal, configureWebGpu, cpuRuntime, lastGpuStats, lastKernelStats, randn, renderMask, slidingWindow } from '../../index.js';
import { type Command, UsageError, cliNumber } from '../command.js';

const usage = `vlm-attention attention [--batch B] [--heads H] [--kv-heads Hk] [--seq N] [--seq-k Nk] [--head-dim D]
                         [--causal] [--window L] [--backend auto|wasm|cpu-ts|webgpu] [--no-robustness] [--json]
Runs one attention call on random inputs and reports time and GFLOP/s.
--window L: each query sees at most L keys before its own position; with --causal none after it, without
--causal every key after it (as \`cost attention --window\`).
--no-robustness (with --backend webgpu, Node): shaders run without WebGPU's bounds clamps (Dawn's
disable_robustness; see docs/webgpu.md).`;

const command: Command = {
  summary: 'run one attention call on random inputs (timing and kernel statistics)',
  flags: { seqLenQ: 'seq', seqLenK: 'seq-k', numHeads: 'heads', numKvHeads: 'kv-heads' },
  usage,
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: {
        batch: { type: 'string', default: '1' }, heads: { type: 'string', default: '16' }, 'kv-heads': { type: 'string' },
        seq: { type: 'string', default: '577' }, 'seq-k': { type: 'string' }, 'head-dim': { type: 'string', default: '64' },
        causal: { type: 'boolean', default: false }, window: { type: 'string' }, backend: { type: 'string', default: 'auto' },
        json: { type: 'boolean', default: false }, 'no-robustness': { type: 'boolean', default: false },
      },
    });
    if (values['no-robustness']) {
      if (values.backend !== 'webgpu') throw new UsageError(`--no-robustness applies to --backend webgpu, not ${values.backend}`);
      configureWebGpu({ robustness: false });
    }
    const int = (name: string, v: string | undefined) => {
      const n = cliNumber(v);
      if (!Number.isInteger(n) || n < 0) throw new UsageError(`--${name} must be a non-negative integer, got ${v}`);
      return n;
    };
    const B = int('batch', values.batch), H = int('heads', values.heads), Hk = int('kv-heads', values['kv-heads'] ?? values.heads);
    if (H < 1) throw new UsageError(`--heads must be at least 1, got ${values.heads}`);
    const N = int('seq', values.seq), Nk = int('seq-k', values['seq-k'] ?? values.seq), D = int('head-dim', values['head-dim']);
    // The window bounds the keys before each query; --causal bounds the keys after it (window(L, 0) is causal local attention).
    const mask = values.window !== undefined ? slidingWindow(int('window', values.window), values.causal ? 0 : -1) : values.causal ? causal() : null;
    // Random inputs this command allocates: refuse sizes no typed array holds before trying (a RangeError otherwise).
    const MAX_ELEMENTS = 2 ** 30;
    for (const [what, n] of [['q (--batch × --seq × --heads × --head-dim)', B * N * H * D], ['k, v (--batch × --seq-k × --kv-heads × --head-dim)', B * Nk * Hk * D]] as const) {
      if (n > MAX_ELEMENTS) throw new UsageError(`${what} would hold ${n.toExponential(3)} elements; this command allocates at most 2^30 (4 GB of f32) a tensor`);
    }
    const q = randn([B, N, H, D], 1), k = randn([B, Nk, Hk, D], 2), v = randn([B, Nk, Hk, D], 3);
    const backend = values.backend as 'auto';
    await attention(q, k, v, { mask, backend });
    const t0 = performance.now();
    await attention(q, k, v, { mask, backend });
    const ms = performance.now() - t0;
    // The project's nominal count (4·B·H·N·Nk·d, halved for causal when N = Nk, as the benchmarks count), and the
    // cost model's count of the work the mask leaves (visited tiles' multiply-adds and softmax).
    const cost = attentionCost({ batch: B, seqLenQ: N, seqLenK: Nk, numHeads: H, numKvHeads: Hk, headDim: D, mask, dtype: 'f32' }, { tiling: 'cpu' });
    const rt = backend === 'auto' || backend === 'wasm' ? await cpuRuntime() : null;
    const result = {
      shape: { B, H, Hk, N, Nk, D }, mask: mask?.describe() ?? 'none', ms, gflops: cost.flops.nominal / ms / 1e6, countedGflops: cost.flops.total / ms / 1e6,
      kernel: values.backend === 'webgpu' ? lastGpuStats : lastKernelStats, cpu: rt && { variant: rt.variant, threads: rt.threads },
    };
    if (values.json) console.log(JSON.stringify(result, null, 2));
    else {
      console.log(`attention B${B} H${H}/${Hk} N${N}×${Nk} d${D} mask=${result.mask}: ${ms.toFixed(2)} ms, ${result.gflops.toFixed(1)} GFLOP/s nominal (4·B·H·N·Nk·d, halved for causal when N = Nk), ${result.countedGflops.toFixed(1)} GFLOP/s of the work the mask leaves (cost model)`);
      if (mask) console.log(renderMask(mask, { seqLenQ: N, seqLenK: Nk }, { maxCells: 32 }));
    }
  },
};
export default command;
