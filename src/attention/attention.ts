/**
 * Public attention ops: validate → plan → pick a backend → run.
 */
import type { Mask } from '../masks/mask.js';
import { Tensor } from '../tensor/tensor.js';
import { UnsupportedError, ValueError, checkOptionKeys } from '../errors.js';
import { type BackendName, type DeviceTensor, type HostBackend, getBackend, isDeviceTensor } from './backend.js';
import { ATTENTION_OPTION_KEYS, type AttentionOptions, type AttentionPlan, type VarlenOptions, planAttention, planAttentionVarlen } from './plan.js';
import { canonical, checkNoOverlap, checkOut, outputShapes } from './views.js';

/** Where `attention` / `attentionVarlen` run on host tensors, and optional preallocated outputs. */
export interface RunOptions {
  /** 'auto' (default: WebAssembly SIMD, else TypeScript), 'wasm', 'cpu-ts', 'webgpu', or a backend object. */
  backend?: BackendName | HostBackend;
  /** Preallocated output (shape of the result; dtype of q). */
  out?: Tensor;
  /** Preallocated log-sum-exp output (f32, the shape of `AttentionResult.lse`); giving it implies `returnLse`. */
  lseOut?: Tensor;
}

/** The option names of RunOptions. */
export const RUN_OPTION_KEYS = ['backend', 'out', 'lseOut'] as const;

/** The result of `attention` / `attentionVarlen` on host tensors. */
export interface AttentionResult {
  /** [batch, seqLenQ, numHeads, headDimV] (BSHD) or [batch, numHeads, seqLenQ, headDimV] (BHSD); varlen: [totalQ, numHeads, headDimV]. */
  out: Tensor;
  /** Natural-log log-sum-exp of the scaled scores: [batch, numHeads, seqLenQ] (varlen: [numHeads, totalQ]), f32; −∞ on fully masked rows. Present with `returnLse` or `lseOut`. */
  lse?: Tensor;
}

/** Device calls return device tensors: a host out or lseOut would be left unwritten, so they are refused. */
function noHostOutputs(opts: RunOptions): void {
  if (opts.out !== undefined || opts.lseOut !== undefined) throw new UnsupportedError('out / lseOut with device tensors', 'the returned device tensors (read them back with toTensor())');
}

/** Device tensors run on the backend that owns them: an explicit other backend is refused, not silently overridden. */
export function checkDeviceBackend(backend: BackendName | HostBackend | undefined, device: string): void {
  if (backend === undefined || backend === 'auto') return;
  const name = typeof backend === 'string' ? backend : backend?.name;
  if (name !== device) throw new UnsupportedError(`backend '${String(name)}' with ${device} device tensors (they run on the backend that owns them)`, `backend: '${device}' or 'auto' (or host tensors for '${String(name)}')`, 'backend');
}

async function execute(plan: AttentionPlan, q: Tensor, k: Tensor, v: Tensor, opts: RunOptions): Promise<AttentionResult> {
  // The plan reads shapes only; the kernels need Tensor views (an object with a shape and a dtype is not one).
  for (const [t, name] of [[q, 'q'], [k, 'k'], [v, 'v']] as const) {
    if (!(t instanceof Tensor)) throw new ValueError(`${name} must be a Tensor (or a device tensor such as GpuTensor, with the others), got ${(t as object)?.constructor?.name ?? typeof t}`, name);
  }
  const shapes = outputShapes(plan);
  const out = opts.out ?? Tensor.zeros(shapes.out, plan.dtype);
  if (opts.out) checkOut(opts.out, shapes.out, plan.dtype, 'out');
  let lse: Tensor | undefined;
  if (plan.returnLse || opts.lseOut) {
    lse = opts.lseOut ?? Tensor.zeros(shapes.lse, 'f32');
    if (opts.lseOut) checkOut(opts.lseOut, shapes.lse, 'f32', 'lseOut');
  }
  const outputs: [Tensor, string][] = [];
  if (opts.out) outputs.push([opts.out, 'out']);
  if (opts.lseOut) outputs.push([opts.lseOut, 'lseOut']);
  if (outputs.length) checkNoOverlap(outputs, [[q, 'q'], [k, 'k'], [v, 'v']]);
  const backend = await getBackend(opts.backend ?? 'auto');
  await backend.run(plan, canonical(plan, q, 'q'), canonical(plan, k, 'k'), canonical(plan, v, 'v'), canonical(plan, out, 'out'), lse ?? null);
  return lse ? { out, lse } : { out };
}

/**
 * Scaled dot-product attention with FlashAttention semantics, never materialising the
 * seqLenQ × seqLenK matrix.
 *
 * Shapes (layout 'bshd', the default): q [batch, seqLenQ, numHeads, headDim],
 * k [batch, seqLenK, numKvHeads, headDim], v [batch, seqLenK, numKvHeads, headDimV].
 * numHeads % numKvHeads == 0 (MHA, GQA, MQA); query head h uses KV head ⌊h / (numHeads/numKvHeads)⌋.
 * headDim and headDimV: 1..256. Scores are q·k·scale (scale default 1/√headDim), then
 * softcap·tanh(s/softcap) when softcap > 0.
 *
 * Masks: causal masks align bottom-right when seqLenQ ≠ seqLenK (query i sees keys
 * j ≤ i + seqLenK − seqLenQ), as FlashAttention ≥ 2.1:
 * ```
 * Sq=2, Sk=5     Sq=5, Sk=2
 * █ █ █ █ ░      ░ ░
 * █ █ █ █ █      ░ ░
 *                ░ ░
 *                █ ░
 *                █ █
 * ```
 * Fully masked rows output 0 (and lse −∞), never NaN. A NaN among a row's visible scores makes that
 * row NaN.
 */
export async function attention(q: Tensor, k: Tensor, v: Tensor, opts?: AttentionOptions & RunOptions): Promise<AttentionResult>;
export async function attention(q: DeviceTensor, k: DeviceTensor, v: DeviceTensor, opts?: AttentionOptions & DeviceRunOptions): Promise<DeviceAttentionResult>;
export async function attention(q: Tensor | DeviceTensor, k: Tensor | DeviceTensor, v: Tensor | DeviceTensor, opts: AttentionOptions & RunOptions & DeviceRunOptions = {}): Promise<AttentionResult | DeviceAttentionResult> {
  opts ??= {}; // null reads as no options, as undefined does
  checkOptionKeys(opts, [...ATTENTION_OPTION_KEYS, ...RUN_OPTION_KEYS], 'attention');
  const plan = planAttention(q, k, v, opts);
  if (isDeviceTensor(q)) {
    noHostOutputs(opts);
    checkDeviceBackend(opts.backend, q.device);
    return executeDevice(plan, q, k as DeviceTensor, v as DeviceTensor);
  }
  return execute(plan, q, k as Tensor, v as Tensor, opts);
}

/** Run options of a call on device tensors (GpuTensor): the tensors' backend runs it. */
export interface DeviceRunOptions {
  /** 'auto' or the tensors' own backend ('webgpu'): the backend that owns them runs the call; another is refused. */
  backend?: BackendName | HostBackend;
}

/** The result of a call on device tensors: device tensors, read back with `toTensor()`. */
export interface DeviceAttentionResult {
  /** Output in the layout of q (BSHD, or a BHSD view for layout 'bhsd'), headDimV wide. */
  out: DeviceTensor;
  /** Natural-log log-sum-exp [batch, numHeads, seqLenQ] (f32), with `returnLse`. */
  lse?: DeviceTensor;
}

async function executeDevice(plan: AttentionPlan, q: DeviceTensor, k: DeviceTensor, v: DeviceTensor): Promise<DeviceAttentionResult> {
  if (!isDeviceTensor(k) || !isDeviceTensor(v) || k.device !== q.device || v.device !== q.device) {
    throw new UnsupportedError('q, k and v must all live on the same device (mixing host and device tensors)', `upload with ${q.device} tensors`);
  }
  const backend = await getBackend(q.device);
  if (!backend.runDevice) throw new UnsupportedError(`backend '${q.device}' cannot run on device tensors`, 'host tensors');
  const view = (t: DeviceTensor) => (plan.varlen || plan.layout === 'bshd' ? t : t.permute([0, 2, 1, 3]));
  const r = await backend.runDevice(plan, view(q), view(k), view(v));
  const out = plan.varlen || plan.layout === 'bshd' ? r.out : r.out.permute([0, 2, 1, 3]);
  return r.lse ? { out, lse: r.lse } : { out };
}

/**
 * Packed variable-length attention (FlashAttention's varlen API): q [totalQ, numHeads, headDim],
 * k [totalK, numKvHeads, headDim], v [totalK, numKvHeads, headDimV], with cuSeqlensQ/K
 * (int, [numSeqs + 1], starting at 0). Each sequence is attended independently; masks apply per
 * sequence with its own bottom-right alignment (Sk_b − Sq_b). lse is [numHeads, totalQ].
 */
export async function attentionVarlen(q: Tensor, k: Tensor, v: Tensor, opts: VarlenOptions & RunOptions): Promise<AttentionResult>;
export async function attentionVarlen(q: DeviceTensor, k: DeviceTensor, v: DeviceTensor, opts: VarlenOptions & DeviceRunOptions): Promise<DeviceAttentionResult>;
export async function attentionVarlen(q: Tensor | DeviceTensor, k: Tensor | DeviceTensor, v: Tensor | DeviceTensor, opts: VarlenOptions & RunOptions): Promise<AttentionResult | DeviceAttentionResult> {
  // layout is refused by the plan with its own message (packed tensors have one layout).
  if (opts && typeof opts === 'object') checkOptionKeys(opts, [...ATTENTION_OPTION_KEYS, 'cuSeqlensQ', 'cuSeqlensK', ...RUN_OPTION_KEYS], 'attentionVarlen');
  const plan = planAttentionVarlen(q, k, v, opts);
  if (isDeviceTensor(q)) {
    noHostOutputs(opts);
    checkDeviceBackend(opts.backend, q.device);
    return executeDevice(plan, q, k as DeviceTensor, v as DeviceTensor);
  }
  return execute(plan, q, k as Tensor, v as Tensor, opts);
}

export type { AttentionOptions, VarlenOptions, Mask };
