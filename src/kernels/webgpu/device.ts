/**
 * WebGPU device layer: adapter and device acquisition in browsers (navigator.gpu) and in Node
 * (Dawn's `webgpu` package, loaded on demand), capability detection, WGSL compilation with compiler
 * messages surfaced as DeviceError, device-loss reporting with recovery on the next call, a pipeline
 * cache keyed by kernel variants, and a buffer pool.
 */
import { DeviceError, UnsupportedError, ValueError, checkOptionKeys, optionNames } from '../../errors.js';
import { type DawnModule, isNode, nodeDawn } from '../../platform/node.js';

/** One subgroup-matrix shape the adapter supports (Chromium's experimental subgroup-matrix feature): M×K · K×N → M×N. */
export interface SubgroupMatrixConfig {
  /** Element type of the left and right operands ('f16', 'f32', 'i8', …). */
  componentType: string;
  /** Element type of the result (accumulator) matrix. */
  resultComponentType: string;
  /** Rows of the left and result matrices. */
  M: number;
  /** Columns of the right and result matrices. */
  N: number;
  /** Columns of the left matrix and rows of the right one (the reduction dimension). */
  K: number;
}

/**
 * What the acquired device can do, read once at device creation: the optional features enabled (those the
 * adapter has, minus WebGpuInit.disable), the limits requested at the adapter's maxima, and the adapter's info.
 */
export interface GpuCaps {
  /** Whether 'shader-f16' is enabled (f16 arithmetic in WGSL). */
  f16: boolean;
  /** Whether 'subgroups' is enabled (subgroup reductions and shuffles). */
  subgroups: boolean;
  /** Smallest subgroup size the adapter reports, in invocations; 0 when it reports none. */
  subgroupMinSize: number;
  /** Largest subgroup size the adapter reports, in invocations; 0 when it reports none. */
  subgroupMaxSize: number;
  /** Whether 'timestamp-query' is enabled. */
  timestamp: boolean;
  /**
   * The subgroup-matrix shapes the adapter offers; empty without 'chromium-experimental-subgroup-matrix'
   * (which is only enabled together with 'subgroups'). The tensor-core kernel needs f16 16×16×16 → f32.
   */
  subgroupMatrix: SubgroupMatrixConfig[];
  /** maxComputeWorkgroupStorageSize: workgroup memory a workgroup may use, in bytes. */
  maxWorkgroupStorage: number;
  /** maxStorageBufferBindingSize, in bytes: bounds each GpuTensor and each kernel's metadata. */
  maxStorageBinding: number;
  /** maxBufferSize, in bytes. */
  maxBufferSize: number;
  /** Invocations a (one-dimensional) workgroup may have: the smaller of maxComputeInvocationsPerWorkgroup and maxComputeWorkgroupSizeX. */
  maxInvocations: number;
  /**
   * Whether a one-dimensional workgroup of 128 or 256 invocations with subgroup matrices enabled splits into
   * 32-wide subgroups in invocation order (subgroup_id = lid / 32, subgroup_invocation_id = lid % 32), as
   * measured at device creation (probeSubgroupLayout). The tensor-core kernel then derives its offsets from
   * the invocation index, which lets Dawn drop their bounds clamps. False without subgroup matrices.
   */
  subgroupLinear: boolean;
  /** Whether shaders keep WGSL's bounds clamps (false only after `robustness: false` or Dawn's disable_robustness toggle). */
  robust: boolean;
  /** The adapter's vendor (GPUAdapterInfo); '' when not reported. */
  vendor: string;
  /** The adapter's architecture (GPUAdapterInfo); '' when not reported. */
  architecture: string;
  /** The adapter's description (GPUAdapterInfo); '' when not reported. */
  description: string;
}

/** How the WebGPU device is acquired: pass to configureWebGpu or gpuContext. */
export interface WebGpuInit {
  /** A GPU object (navigator.gpu or Dawn's create(...)); found automatically when absent. */
  gpu?: GPU;
  /** Passed to requestAdapter (default 'high-performance'). */
  powerPreference?: GPUPowerPreference;
  /** Dawn toggles for Node (default: allow_unsafe_apis, vulkan_enable_f16_on_nvidia). */
  dawnFlags?: string[];
  /** Disable optional features (for tests of the fallbacks): 'shader-f16', 'subgroups', 'subgroup-matrix'. */
  disable?: string[];
  /**
   * false (Node with Dawn only): shaders run without the bounds clamps that WebGPU inserts around every
   * array access (Dawn's disable_robustness toggle), as CUDA kernels do. Every kernel here checks its own
   * bounds and passes the conformance suite with poisoned outputs either way; on the H200 the portable
   * f32 kernel ran 1.15–1.25× faster without the clamps (docs/webgpu.md). A kernel bug could then read or write
   * outside its buffers, so it is opt-in. Browsers always clamp: UnsupportedError there, as when `gpu` is
   * given (pass the toggle to your own Dawn instance instead). Default true.
   */
  robustness?: boolean;
}

const DEFAULT_DAWN_FLAGS = 'enable-dawn-features=allow_unsafe_apis,vulkan_enable_f16_on_nvidia';

/** Dawn's instance flags for `init` in Node: dawnFlags, else $DAWN_FLAGS, else the default; robustness: false adds disable_robustness. */
export function dawnFlagsFor(init: WebGpuInit, env: string | undefined): string[] {
  const flags = [...(init.dawnFlags ?? [env ?? DEFAULT_DAWN_FLAGS])];
  if (init.robustness === false && !robustnessDisabled(flags)) {
    const i = flags.findIndex((f) => f.startsWith('enable-dawn-features='));
    if (i >= 0) flags[i] = `${flags[i]},disable_robustness`;
    else flags.push('enable-dawn-features=disable_robustness');
  }
  return flags;
}

/** Whether Dawn flags turn WebGPU's bounds clamps off. */
export function robustnessDisabled(flags: readonly string[]): boolean {
  return flags.some((f) => f.startsWith('enable-dawn-features=') && f.slice(21).split(',').includes('disable_robustness'));
}

const WANTED: GPUFeatureName[] = ['shader-f16', 'subgroups' as GPUFeatureName, 'timestamp-query', 'chromium-experimental-subgroup-matrix' as GPUFeatureName];

/** The DeviceError message when no WebGPU adapter can be found: how to get one in browsers, Node and CI (SwiftShader). */
export const NO_WEBGPU_HELP =
  'no WebGPU adapter found. In browsers, use one with WebGPU enabled (Chrome/Edge ≥ 113, Firefox ≥ 141, Safari ≥ 26). ' +
  "In Node, install the optional 'webgpu' package (npm install webgpu) and make sure a Vulkan driver is present; " +
  'without a GPU, SwiftShader works: install Debian\'s chromium and libvulkan1 and set ' +
  'VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json (and XDG_RUNTIME_DIR).';

async function findGpu(init: WebGpuInit): Promise<{ gpu: GPU; robust: boolean }> {
  const noUnsafe = (where: string) => {
    if (init.robustness === false) throw new UnsupportedError(`robustness: false needs the Dawn instance this library creates in Node; ${where}`, 'robustness: true');
  };
  if (init.gpu) { noUnsafe('with `gpu` given, pass the disable_robustness toggle to your own Dawn instance'); return { gpu: init.gpu, robust: true }; }
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu) { noUnsafe('browsers always bounds-check'); return { gpu: nav.gpu, robust: true }; }
  if (isNode) {
    let mod: DawnModule | null;
    try {
      mod = await nodeDawn();
    } catch (e) {
      throw new DeviceError(`${NO_WEBGPU_HELP} (could not load the 'webgpu' package: ${(e as Error).message})`);
    }
    if (!mod) throw new DeviceError(NO_WEBGPU_HELP);
    // Dawn's globals (GPUBufferUsage, GPUMapMode, …) are needed by WebGPU code.
    for (const [k, v] of Object.entries(mod.globals)) if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
    const flags = dawnFlagsFor(init, process.env.DAWN_FLAGS);
    return { gpu: mod.create(flags), robust: !robustnessDisabled(flags) };
  }
  throw new DeviceError(NO_WEBGPU_HELP);
}

/**
 * One acquired WebGPU device with its capabilities, pipeline cache and buffer pool. The library shares one
 * (gpuContext()); once the device is lost, the next gpuContext() call acquires a new one.
 */
export class GpuContext {
  /** Compiled pipelines by kernel key (the variant key); a failed compilation is dropped so that the next call retries. */
  readonly pipelines = new Map<string, Promise<GPUComputePipeline>>();
  private pool = new Map<string, GPUBuffer[]>();
  /** Why the device was lost ('reason: message'); null while it is alive. */
  lostReason: string | null = null;

  /**
   * `gpu` is held so that Dawn's instance outlives the device (collecting it crashes Dawn's event loop).
   * @param gpu - The GPU object the adapter came from.
   * @param adapter - The adapter the device was requested from.
   * @param device - The device every kernel runs on.
   * @param caps - What the device can do.
   */
  constructor(readonly gpu: GPU, readonly adapter: GPUAdapter, readonly device: GPUDevice, readonly caps: GpuCaps) {
    device.lost.then((info) => {
      this.lostReason = `${info.reason}: ${info.message}`;
    });
  }

  /** Whether the device has been lost (see lostReason); gpuContext() then acquires a new one. */
  get lost(): boolean {
    return this.lostReason !== null;
  }

  /** Compiles WGSL, raising DeviceError with the compiler's messages (line:col) on failure. */
  async pipeline(key: string, code: string, constants: Record<string, number> = {}): Promise<GPUComputePipeline> {
    let p = this.pipelines.get(key);
    if (!p) {
      p = this.compile(key, code, constants);
      this.pipelines.set(key, p);
      p.catch(() => this.pipelines.delete(key));
    }
    return p;
  }

  private async compile(key: string, code: string, constants: Record<string, number>): Promise<GPUComputePipeline> {
    const device = this.device;
    // Error scopes are one stack per device, shared by every call in flight: each is pushed and popped with no
    // await in between, so concurrent calls never pop one another's (see `checked`).
    device.pushErrorScope('validation');
    const module = device.createShaderModule({ code, label: key });
    const moduleError = device.popErrorScope();
    const info = await module.getCompilationInfo();
    const errors = info.messages.filter((m) => m.type === 'error');
    if (errors.length) {
      await moduleError;
      const lines = code.split('\n');
      throw new DeviceError(`WGSL compilation failed for kernel ${key}`, errors.map((m) => `  ${m.lineNum}:${m.linePos} ${m.message}\n    ${lines[m.lineNum - 1] ?? ''}`));
    }
    try {
      const me = await moduleError;
      if (me) throw new DeviceError(`shader module creation failed for kernel ${key}: ${me.message}`);
      // Dawn's node binding aborts the process in createComputePipelineAsync on some drivers
      // (std::system_error from its worker pool), so Node compiles synchronously (inside a scope of its own);
      // elsewhere the asynchronous form rejects with its error.
      const desc: GPUComputePipelineDescriptor = { layout: 'auto', label: key, compute: { module, entryPoint: 'main', constants } };
      if (!isNode) return await device.createComputePipelineAsync(desc);
      device.pushErrorScope('validation');
      const pipe = device.createComputePipeline(desc);
      const err = await device.popErrorScope();
      if (err) throw new DeviceError(`pipeline creation failed for kernel ${key}: ${err.message}`);
      return pipe;
    } catch (e) {
      if (e instanceof DeviceError) throw e;
      throw new DeviceError(`pipeline creation failed for kernel ${key}: ${(e as Error).message}`);
    }
  }

  /** A storage buffer of at least `bytes` (pooled by power-of-two size class). */
  acquire(bytes: number, usage: number = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC): GPUBuffer {
    const size = Math.max(256, 2 ** Math.ceil(Math.log2(Math.max(bytes, 4))));
    const key = `${size}:${usage}`; // every usage bit: a uniform buffer never serves as a storage one
    const list = this.pool.get(key);
    const hit = list?.pop();
    if (hit) return hit;
    return this.device.createBuffer({ size, usage });
  }

  /** Returns a buffer from acquire to the pool (at most 8 kept per size and usage; others are destroyed). Pass the usage it was acquired with. */
  release(buffer: GPUBuffer, usage: number = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC): void {
    const key = `${buffer.size}:${usage}`;
    let list = this.pool.get(key);
    if (!list) { list = []; this.pool.set(key, list); }
    if (list.length < 8) list.push(buffer); else buffer.destroy();
  }

  /**
   * Raises the device's validation/out-of-memory errors from the GPU calls `fn` makes before its first `await`
   * (encoding and submitting: what it awaits afterwards, such as the queue's completion, is outside the scopes).
   * Error scopes are one stack per device, shared by every call in flight; pushing and popping them with no
   * await in between keeps concurrent calls from popping one another's scopes (which reported one call's error
   * against another and let the failing call return output it never computed).
   */
  async checked<T>(what: string, fn: () => T | Promise<T>): Promise<T> {
    const device = this.device;
    device.pushErrorScope('out-of-memory');
    device.pushErrorScope('validation');
    let pending: T | Promise<T>;
    let vP: Promise<GPUError | null>, oP: Promise<GPUError | null>;
    try {
      pending = fn();
    } finally {
      // (A pop rejects only when the device is lost, which lostReason reports below.)
      vP = device.popErrorScope().catch(() => null);
      oP = device.popErrorScope().catch(() => null);
    }
    const result = await pending;
    const v = await vP;
    const o = await oP;
    if (this.lostReason) throw new DeviceError(`the GPU device was lost during ${what} (${this.lostReason}); the next call acquires a new device`);
    if (v) throw new DeviceError(`${what}: ${v.message}`);
    if (o) throw new DeviceError(`${what}: out of GPU memory: ${o.message}`);
    return result;
  }
}

let current: Promise<GpuContext> | null = null;
let currentInit: WebGpuInit = {};

/** Features `disable` may name (WebGpuInit.disable): those this library asks for, and 'subgroup-matrix' for the Chromium one. */
const DISABLE_NAMES: readonly string[] = [...WANTED, 'subgroup-matrix'];

/** Validates configureWebGpu's settings up front: ValueError naming the option (they failed later, as raw Dawn errors). */
function checkInit(init: WebGpuInit): void {
  if (!init || typeof init !== 'object') throw new ValueError('configureWebGpu takes { gpu?, powerPreference?, dawnFlags?, disable?, robustness? }', 'init');
  checkOptionKeys(init, optionNames<WebGpuInit>({ gpu: true, powerPreference: true, dawnFlags: true, disable: true, robustness: true }), 'configureWebGpu');
  const { gpu, powerPreference, dawnFlags, disable, robustness } = init;
  if (gpu !== undefined && (gpu === null || typeof (gpu as { requestAdapter?: unknown }).requestAdapter !== 'function')) {
    throw new ValueError('gpu must be a GPU object (navigator.gpu, or Dawn\'s create(...)) with requestAdapter()', 'gpu');
  }
  if (powerPreference !== undefined && powerPreference !== 'low-power' && powerPreference !== 'high-performance') {
    throw new ValueError(`powerPreference must be 'low-power' or 'high-performance', got ${JSON.stringify(powerPreference)}`, 'powerPreference');
  }
  if (dawnFlags !== undefined && (!Array.isArray(dawnFlags) || dawnFlags.some((f) => typeof f !== 'string' || !/^[^=\s]+=/.test(f)))) {
    throw new ValueError(`dawnFlags must be strings of the form key=value (e.g. '${DEFAULT_DAWN_FLAGS}'), got ${JSON.stringify(dawnFlags)}`, 'dawnFlags');
  }
  if (disable !== undefined && (!Array.isArray(disable) || disable.some((f) => !DISABLE_NAMES.includes(f)))) {
    throw new ValueError(`disable must list features among ${DISABLE_NAMES.join(', ')}, got ${JSON.stringify(disable)}`, 'disable');
  }
  if (robustness !== undefined && typeof robustness !== 'boolean') throw new ValueError(`robustness must be true or false, got ${JSON.stringify(robustness)}`, 'robustness');
}

/**
 * Sets how the WebGPU device is acquired (takes effect at the next acquisition). The device acquired before is
 * destroyed, with its buffer pools: dropped without it, each reconfiguration kept a device and its memory alive.
 * GpuTensors from it, and calls still running on it, then fail (ValueError for another device's tensors, DeviceError).
 */
export function configureWebGpu(init: WebGpuInit): void {
  checkInit(init);
  currentInit = { ...init };
  const old = current;
  current = null;
  old?.then((ctx) => { RETIRED.add(ctx); ctx.device.destroy(); }, () => undefined);
}

/** Contexts configureWebGpu replaced (their device destroyed): their tensors' data is gone. */
const RETIRED = new WeakSet<GpuContext>();

/** Whether configureWebGpu replaced this context (its device was destroyed, with every buffer on it). */
export function isRetiredContext(ctx: GpuContext): boolean {
  return RETIRED.has(ctx);
}

async function create(init: WebGpuInit): Promise<GpuContext> {
  const { gpu, robust } = await findGpu(init);
  const adapter = await gpu.requestAdapter({ powerPreference: init.powerPreference ?? 'high-performance' });
  if (!adapter) throw new DeviceError(NO_WEBGPU_HELP);
  const disable = new Set(init.disable ?? []);
  const features = WANTED.filter((f) => adapter.features.has(f) && !disable.has(f) && !(f === ('chromium-experimental-subgroup-matrix' as GPUFeatureName) && disable.has('subgroup-matrix')));
  if (features.includes('chromium-experimental-subgroup-matrix' as GPUFeatureName) && !features.includes('subgroups' as GPUFeatureName)) features.splice(features.indexOf('chromium-experimental-subgroup-matrix' as GPUFeatureName), 1);
  const L = adapter.limits;
  const device = await adapter.requestDevice({
    requiredFeatures: features,
    requiredLimits: {
      maxBufferSize: L.maxBufferSize,
      maxStorageBufferBindingSize: L.maxStorageBufferBindingSize,
      maxComputeWorkgroupStorageSize: L.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: L.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupSizeX: L.maxComputeWorkgroupSizeX,
      maxStorageBuffersPerShaderStage: L.maxStorageBuffersPerShaderStage,
    },
  });
  const info = (adapter as GPUAdapter & { info?: GPUAdapterInfo }).info ?? ({} as GPUAdapterInfo);
  const ext = info as GPUAdapterInfo & { subgroupMinSize?: number; subgroupMaxSize?: number; subgroupMatrixConfigs?: SubgroupMatrixConfig[] };
  const has = (f: string) => features.includes(f as GPUFeatureName);
  const caps: GpuCaps = {
    f16: has('shader-f16'),
    subgroups: has('subgroups'),
    subgroupMinSize: ext.subgroupMinSize ?? 0,
    subgroupMaxSize: ext.subgroupMaxSize ?? 0,
    timestamp: has('timestamp-query'),
    subgroupMatrix: has('chromium-experimental-subgroup-matrix') ? (ext.subgroupMatrixConfigs ?? []).map((c) => ({ componentType: c.componentType, resultComponentType: c.resultComponentType, M: c.M, N: c.N, K: c.K })) : [],
    maxWorkgroupStorage: device.limits.maxComputeWorkgroupStorageSize,
    maxStorageBinding: device.limits.maxStorageBufferBindingSize,
    maxBufferSize: device.limits.maxBufferSize,
    // Every kernel here uses one-dimensional workgroups: the larger of them needs both limits.
    maxInvocations: Math.min(device.limits.maxComputeInvocationsPerWorkgroup, device.limits.maxComputeWorkgroupSizeX),
    robust,
    subgroupLinear: false,
    vendor: info.vendor ?? '',
    architecture: info.architecture ?? '',
    description: info.description ?? '',
  };
  if (caps.subgroupMatrix.length && caps.f16) caps.subgroupLinear = await probeSubgroupLayout(device);
  return new GpuContext(gpu, adapter, device, caps);
}

/**
 * Whether subgroups are lid / 32 with lanes lid % 32 in workgroups of 128 and 256 invocations of a shader
 * that enables subgroup matrices (so that the driver forms subgroups as it does for the tensor-core kernel):
 * 64 workgroups of each size record, per invocation, whether its subgroup_id and subgroup_invocation_id match
 * and its subgroup size is 32. Any mismatch, or any error, gives false.
 */
async function probeSubgroupLayout(device: GPUDevice): Promise<boolean> {
  const groups = 64;
  const results: GPUBuffer[] = [];
  const reads: GPUBuffer[] = [];
  try {
    device.pushErrorScope('validation');
    const enc = device.createCommandEncoder();
    for (const size of [128, 256]) {
      const code = `enable f16;
enable subgroups;
enable chromium_experimental_subgroup_matrix;
diagnostic(off, chromium.subgroup_matrix_uniformity);
@group(0) @binding(0) var<storage, read_write> ok: array<u32>;
var<workgroup> wm: array<f32, ${size * 8}>;
@compute @workgroup_size(${size})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wg: vec3<u32>,
        @builtin(subgroup_id) sg: u32, @builtin(subgroup_invocation_id) lane: u32, @builtin(subgroup_size) n: u32) {
  subgroupMatrixStore<col_major>(&wm, (lid / 32u) * 256u, subgroup_matrix_result<f32, 16, 16>(), 16u);
  ok[wg.x * ${size}u + lid] = select(0u, 1u, n == 32u && sg == lid / 32u && lane == lid % 32u);
}`;
      const module = device.createShaderModule({ code });
      const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
      const bytes = groups * size * 4;
      const buf = device.createBuffer({ size: bytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
      const read = device.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
      const pass = enc.beginComputePass();
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: buf } }] }));
      pass.dispatchWorkgroups(groups);
      pass.end();
      enc.copyBufferToBuffer(buf, 0, read, 0, bytes);
      results.push(buf); reads.push(read);
    }
    device.queue.submit([enc.finish()]);
    if (await device.popErrorScope()) return false;
    let linear = true;
    for (const read of reads) {
      await read.mapAsync(GPUMapMode.READ);
      if (new Uint32Array(read.getMappedRange()).some((x) => x !== 1)) linear = false;
      read.unmap();
    }
    return linear;
  } catch {
    return false;
  } finally {
    for (const b of [...results, ...reads]) b.destroy();
  }
}

/** The shared GPU context; re-acquired after a device loss. */
export async function gpuContext(init?: WebGpuInit): Promise<GpuContext> {
  if (init) configureWebGpu(init);
  if (current) {
    const ctx = await current.catch(() => null);
    if (ctx && !ctx.lost) return ctx;
    current = null;
  }
  current = create(currentInit);
  current.catch(() => { current = null; });
  return current;
}
