import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import {
  type CostConfig, type DeviceProfile, DEVICE_PROFILES, FormatError, comparePredictions, formatBytesSI, formatCostReport, formatDuration,
  formatSI, measureCpuProfile, predictBenchmarkShapes, runCostConfig,
} from '../../index.js';
import { type Command, UsageError, cliNumber, refuseFlags } from '../command.js';

const usage = `vlm-attention cost [attention|kv|tokens|budget|devices|shapes|bench] [flags] [--json]
vlm-attention cost --config calc.yaml [--json]       (JSON or YAML; see docs/cost.md)

Analytic cost model: FLOPs (from the kernels' tile classifier), minimum HBM bytes, roofline time
lower bounds per device, KV-cache size, visual tokens per image, and what a token budget saves.
Units are decimal: 1 MB = 10^6 bytes, 1 GFLOP = 10^9 FLOPs. --window L: each query sees at most L keys
before it; with --causal none after it, without every key after it.

  attention  --seq N [--seq-k Nk] [--batch B] --heads H [--kv-heads Hk] --head-dim D [--head-dim-v Dv]
             [--dtype f16|bf16|f32] [--causal] [--window L] [--softcap C] [--tile-q 64 --tile-k 64]
             [--device h200,a100,...] [--kernel flash|standard] [--unit auto|tensor|vector]
  kv         --layers L --kv-heads Hk --head-dim D --seq N [--heads H] [--batch B] [--dtype f16|bf16|f32|int8]
             [--block-size 16] [--shared-prefix P] [--memory 80GB] [--reserved 16GB]
  tokens     --tokenizer qwen2-vl|llava-next|internvl|clip-vit-l14-224|clip-vit-l14-336|siglip-so400m-384|vit
             [--image WxH] [--max-pixels N (qwen2-vl)] [--max-tiles N (internvl)]
             [--image-size N --patch-size P (vit; patch default 14)]
  budget     --model qwen2-vl-7b|qwen2-vl-2b|llava-1.5-7b|llava-next-7b|internvl2-8b --budget T [--image WxH]
             [--text 32] [--generated 0] [--batch B] [--dtype f16]
  devices    list device profiles (every figure labelled datasheet/measured/derived) [--measure-cpu]
  shapes     [--set gpu|cpu] [--device NAME] [--dtype f16] [--unit auto|tensor|vector]: lower bounds of the
             benchmark shapes, and which are memory-bound
  bench      results.json [--device NAME] [--calibrate ceiling|leave-one-out]: benchmark JSON (schema
             vlm-attention-bench/1) → measured profile and predicted vs measured time per shape (exit
             code 1 if a shape is off by > 2×); ceiling: roofline lower bounds on the measured peaks;
             leave-one-out: each compute-bound shape predicted from the rate its kernel sustained on
             the other shapes`;

const SECTIONS = ['attention', 'kv', 'tokens', 'budget', 'devices', 'bench', 'shapes'] as const;

function image(v: string | undefined): { width: number; height: number } | undefined {
  if (v === undefined) return undefined;
  const m = /^\s*(-?[0-9.]+)\s*[x×]\s*(-?[0-9.]+)\s*$/i.exec(v);
  if (!m) throw new UsageError(`--image must be WIDTHxHEIGHT (e.g. 1024x768), got '${v}'`);
  return { width: Number(m[1]), height: Number(m[2]) };
}

const num = (v: string | undefined): number | undefined => (v === undefined ? undefined : cliNumber(v));

/** Reads a JSON or YAML config file (FormatError with the path when it does not parse). */
export function readCostConfig(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new FormatError(`cannot read config file: ${(e as Error).message}`, path, e);
  }
  try {
    return parseYaml(text);
  } catch (e) {
    throw new FormatError(`config file ${path} is not valid JSON or YAML: ${(e as Error).message.split('\n')[0]}`, path);
  }
}

function devicesTable(profiles: DeviceProfile[]): string {
  const tag = (l: string) => (l === 'datasheet' ? 'ds' : l === 'measured' ? 'ms' : 'dv');
  const fig = (f?: { value: number; label: string }, unit = 'FLOP/s') => (f ? `${formatSI(f.value, unit, 4)} (${tag(f.label)})` : '-');
  const rows = [['device', 'f32 vector', 'f32 tensor', 'f16 vector', 'f16 tensor', 'bandwidth', 'memory', 'on-chip']];
  for (const p of profiles) {
    rows.push([
      p.name, fig(p.peaks.f32?.vector), fig(p.peaks.f32?.tensor), fig(p.peaks.f16?.vector), fig(p.peaks.f16?.tensor),
      fig(p.memoryBandwidth, 'B/s'), `${formatBytesSI(p.memoryBytes.value)} (${tag(p.memoryBytes.label)})`, `${formatBytesSI(p.onChipBytes.value)} (${tag(p.onChipBytes.label)})`,
    ]);
  }
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i ? c.padStart(w[i]!) : c.padEnd(w[i]!))).join('  ')).join('\n') + '\n(ds) datasheet, (ms) measured, (dv) derived from published facts: --json gives every source';
}

const command: Command = {
  summary: 'FLOPs, bytes, roofline time, KV-cache size and visual tokens (analytic cost model)',
  usage,
  flags: {
    seqLenQ: 'seq', seqLenK: 'seq-k', seqLen: 'seq', numHeads: 'heads', numKvHeads: 'kv-heads', numLayers: 'layers',
    blockSizeTokens: 'block-size', sharedPrefixTokens: 'shared-prefix', textTokens: 'text', generatedTokens: 'generated',
    tileQ: 'tile-q', tileK: 'tile-k', width: 'image', height: 'image', memoryBytes: 'memory', reservedBytes: 'reserved', devices: 'device',
  },
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string' }, json: { type: 'boolean', default: false },
        batch: { type: 'string' }, seq: { type: 'string' }, 'seq-k': { type: 'string' }, heads: { type: 'string' }, 'kv-heads': { type: 'string' },
        'head-dim': { type: 'string' }, 'head-dim-v': { type: 'string' }, dtype: { type: 'string' }, causal: { type: 'boolean' },
        window: { type: 'string' }, softcap: { type: 'string' }, 'tile-q': { type: 'string' }, 'tile-k': { type: 'string' },
        device: { type: 'string' }, kernel: { type: 'string' }, unit: { type: 'string' },
        layers: { type: 'string' }, 'block-size': { type: 'string' }, 'shared-prefix': { type: 'string' }, memory: { type: 'string' }, reserved: { type: 'string' },
        tokenizer: { type: 'string' }, image: { type: 'string' }, 'max-pixels': { type: 'string' }, 'max-tiles': { type: 'string' },
        model: { type: 'string' }, budget: { type: 'string' }, text: { type: 'string' }, generated: { type: 'string' },
        'measure-cpu': { type: 'boolean', default: false }, set: { type: 'string' }, calibrate: { type: 'string' },
        'image-size': { type: 'string' }, 'patch-size': { type: 'string' },
      },
    });
    // Each section's flags; any other flag given is refused rather than ignored.
    const FLAGS: Record<string, readonly string[]> = {
      attention: ['batch', 'seq', 'seq-k', 'heads', 'kv-heads', 'head-dim', 'head-dim-v', 'dtype', 'causal', 'window', 'softcap', 'tile-q', 'tile-k', 'device', 'kernel', 'unit'],
      kv: ['layers', 'kv-heads', 'head-dim', 'seq', 'heads', 'batch', 'dtype', 'block-size', 'shared-prefix', 'memory', 'reserved'],
      tokens: ['tokenizer', 'image', 'max-pixels', 'max-tiles', 'image-size', 'patch-size'],
      budget: ['model', 'budget', 'image', 'text', 'generated', 'batch', 'dtype'],
      devices: ['measure-cpu'],
      shapes: ['set', 'device', 'dtype', 'unit', 'kernel'],
      bench: ['device', 'calibrate'],
    };
    const ALL = [...new Set(Object.values(FLAGS).flat())];
    const print = (report: unknown, text: string) => console.log(values.json ? JSON.stringify(report, (_, v) => (ArrayBuffer.isView(v) ? Array.from(v as unknown as ArrayLike<number>) : v), 2) : text);
    const section = positionals[0] ?? (values.config ? undefined : 'attention');
    if (section !== undefined && !(SECTIONS as readonly string[]).includes(section)) {
      throw new UsageError(`unknown section '${section}' (sections: ${SECTIONS.join(', ')})`);
    }
    if (values.config) {
      if (section !== undefined) throw new UsageError('--config takes no section: the file holds the sections');
      refuseFlags(argv, ALL, 'with --config (the file holds the settings)');
      const report = runCostConfig(readCostConfig(values.config));
      const text = formatCostReport(report);
      if (!values.json && !text.trim()) throw new UsageError(`--config ${values.config} holds no section (attention, kv, tokens, budget): nothing to compute`);
      print(report, text);
      return 0;
    }
    refuseFlags(argv, ALL.filter((f) => !FLAGS[section!]!.includes(f)), `in cost ${section}`);
    const maxPositionals = section === 'bench' ? 2 : 1;
    if (positionals.length > maxPositionals) throw new UsageError(`cost ${section} takes no argument ${JSON.stringify(positionals[maxPositionals])}`);
    if (section === 'kv' && values.reserved !== undefined && values.memory === undefined) throw new UsageError('--reserved is subtracted from --memory: give --memory too');
    const devices = values.device ? values.device.split(',').map((s) => s.trim()).filter(Boolean) : undefined;
    const config: CostConfig = {};
    switch (section) {
      case 'attention': {
        if (values.seq === undefined || values.heads === undefined || values['head-dim'] === undefined) throw new UsageError('attention needs --seq, --heads and --head-dim');
        config.attention = {
          batch: num(values.batch), seqLenQ: num(values.seq), seqLenK: num(values['seq-k']), numHeads: num(values.heads), numKvHeads: num(values['kv-heads']),
          headDim: num(values['head-dim']), headDimV: num(values['head-dim-v']), dtype: values.dtype, causal: values.causal, window: num(values.window),
          softcap: num(values.softcap),
          ...(values['tile-q'] !== undefined || values['tile-k'] !== undefined ? { tiling: { tileQ: num(values['tile-q'] ?? '64'), tileK: num(values['tile-k'] ?? '64') } } : {}),
        };
        for (const k of Object.keys(config.attention)) if (config.attention[k] === undefined) delete config.attention[k];
        if (devices) config.devices = devices;
        if (values.kernel) config.kernel = values.kernel as 'flash';
        if (values.unit) config.unit = values.unit as 'auto';
        break;
      }
      case 'kv': {
        if (values.layers === undefined || values['kv-heads'] === undefined || values['head-dim'] === undefined || values.seq === undefined) {
          throw new UsageError('kv needs --layers, --kv-heads, --head-dim and --seq');
        }
        const kv: Record<string, unknown> = {
          numLayers: num(values.layers), numKvHeads: num(values['kv-heads']), numHeads: num(values.heads), headDim: num(values['head-dim']),
          seqLen: num(values.seq), batch: num(values.batch), dtype: values.dtype, blockSizeTokens: num(values['block-size']),
          sharedPrefixTokens: num(values['shared-prefix']), memory: values.memory, reserved: values.reserved,
        };
        for (const k of Object.keys(kv)) if (kv[k] === undefined) delete kv[k];
        config.kv = kv;
        break;
      }
      case 'tokens': {
        if (!values.tokenizer) throw new UsageError('tokens needs --tokenizer');
        const options: Record<string, number> = {};
        const only = (flag: string, tokenizer: string) => { if (values[flag as 'image'] !== undefined && values.tokenizer !== tokenizer) throw new UsageError(`--${flag} applies to --tokenizer ${tokenizer}, not ${values.tokenizer}`); };
        only('max-pixels', 'qwen2-vl'); only('max-tiles', 'internvl'); only('image-size', 'vit'); only('patch-size', 'vit');
        if (values.tokenizer === 'vit' && values['image-size'] === undefined) throw new UsageError('--tokenizer vit needs --image-size (the square input side in pixels)');
        if (values['max-pixels'] !== undefined) options.maxPixels = cliNumber(values['max-pixels']);
        if (values['max-tiles'] !== undefined) options.maxTiles = cliNumber(values['max-tiles']);
        if (values['image-size'] !== undefined) options.imageSize = cliNumber(values['image-size']);
        if (values['patch-size'] !== undefined) options.patchSize = cliNumber(values['patch-size']);
        config.tokens = { tokenizer: values.tokenizer, image: image(values.image), options };
        break;
      }
      case 'budget': {
        if (!values.model || values.budget === undefined) throw new UsageError('budget needs --model and --budget');
        const b: Record<string, unknown> = {
          model: values.model, budget: num(values.budget), image: image(values.image), textTokens: num(values.text),
          generatedTokens: num(values.generated), batch: num(values.batch), dtype: values.dtype,
        };
        for (const k of Object.keys(b)) if (b[k] === undefined) delete b[k];
        config.budget = b as unknown as CostConfig['budget'];
        break;
      }
      case 'devices': {
        const profiles = Object.values(DEVICE_PROFILES);
        if (values['measure-cpu']) profiles.push(await measureCpuProfile());
        print(profiles, devicesTable(profiles));
        return 0;
      }
      case 'shapes': {
        const set = (values.set ?? 'gpu') as 'gpu' | 'cpu';
        if (set !== 'gpu' && set !== 'cpu') throw new UsageError(`--set must be gpu or cpu, got '${values.set}'`);
        const device = devices?.[0] ?? (set === 'gpu' ? 'h200-webgpu' : 'cpu-wasm-2core');
        const rows = predictBenchmarkShapes(set, device, { dtype: values.dtype as 'f16' | undefined, unit: values.unit as 'auto' | undefined, kernel: values.kernel as 'flash' | undefined });
        const table = [['shape', 'dtype', 'unit', 'FLOP/B', 'compute', 'memory', 'time ≥', 'bound', 'nominal rate at bound']];
        for (const r of rows) {
          const x = r.roofline;
          table.push([r.name, String(r.shape.dtype), x.unit, x.intensity.toFixed(1), formatDuration(x.computeSeconds), formatDuration(x.memorySeconds), formatDuration(x.seconds), x.bound, formatSI(r.nominalFlopsPerSecond, 'FLOP/s')]);
        }
        const w = table[0]!.map((_, i) => Math.max(...table.map((r) => r[i]!.length)));
        print(rows, `${device}:\n` + table.map((r) => r.map((c, i) => (i ? c.padStart(w[i]!) : c.padEnd(w[i]!))).join('  ')).join('\n'));
        return 0;
      }
      case 'bench': {
        const file = positionals[1];
        if (!file) throw new UsageError('bench needs a results file: vlm-attention cost bench results.json');
        const calibrate = values.calibrate ?? 'ceiling';
        if (calibrate !== 'ceiling' && calibrate !== 'leave-one-out') throw new UsageError(`--calibrate must be ceiling or leave-one-out, got '${calibrate}'`);
        const rows = comparePredictions(readCostConfig(file) as object, devices?.[0], { calibrate });
        const table = [['shape', 'measured', calibrate === 'ceiling' ? 'predicted ≥' : 'predicted', 'ratio', 'within 2×', 'bound', 'FLOP/B', 'achieved', 'rate from']];
        for (const r of rows) {
          table.push([r.name, formatDuration(r.measuredMs / 1e3), formatDuration(r.predictedMs / 1e3), r.ratio.toFixed(2), r.within2x ? 'yes' : 'NO', r.bound, r.intensity.toFixed(1), formatSI(r.achievedFlopsPerSecond, 'FLOP/s'),
            r.calibration === 'ceiling' ? 'ceiling' : `${r.calibratedFrom!.length} other shapes`]);
        }
        const w = table[0]!.map((_, i) => Math.max(...table.map((r) => r[i]!.length)));
        print(rows.map(({ roofline: _r, ...rest }) => rest), table.map((r) => r.map((c, i) => (i ? c.padStart(w[i]!) : c.padEnd(w[i]!))).join('  ')).join('\n'));
        return rows.every((r) => r.within2x) ? 0 : 1;
      }
    }
    const report = runCostConfig(config);
    print(report, formatCostReport(report));
    return 0;
  },
};
export default command;
