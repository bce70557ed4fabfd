/**
 * The WebGPU attention backend: plan → kernel variant → meta buffer (sequence table, tile plans,
 * jobs, mask data) → dispatch. Inputs may be host tensors (uploaded, computed, downloaded) or
 * GpuTensors (computed in place; outputs stay on the device).
 */
import type { HostBackend } from '../../attention/backend.js';
import type { AttentionPlan } from '../../attention/plan.js';
import { lseView, rowView } from '../../attention/views.js';
import { DTypeError, ShapeError, UnsupportedError } from '../../errors.js';
import { Mask, findTopK } from '../../masks/mask.js';
import { type TilePlan, planTiles } from '../../masks/tiles.js';
import { Tensor, copyInto } from '../../tensor/tensor.js';
import { type GpuContext, gpuContext } from './device.js';
import { compileMaskWgsl } from './mask-wgsl.js';
import { type PortableFlashVariant, type TopKVariant, portableSource, topkSource, variantKey } from './variants.js';

export const GPU_TILE_K = 64;
const PARAM_WORDS = 24;
export const TOPK_MAX = 512;

/** A storage buffer holding a tensor's elements contiguously (f32, or f16/bf16 packed two per word). */
export interface GpuBufferView {
  buffer: GPUBuffer;
  /** Element strides of [seq (dense: batch), row, head] for kernels. */
  dtype: Tensor['dtype'];
}

interface Uploaded {
  buffer: GPUBuffer;
  release: boolean;
}

function bytesOf(t: Tensor): Uint8Array {
  const c = t.contiguous();
  const elem = t.dtype === 'f32' ? 4 : 2;
  const view = new Uint8Array(c.data.buffer, c.data.byteOffset + c.offset * elem, c.size * elem);
  return view;
}

function upload(ctx: GpuContext, t: Tensor): Uploaded {
  const bytes = bytesOf(t);
  const size = Math.max(16, Math.ceil(bytes.byteLength / 4) * 4);
  if (size > ctx.caps.maxStorageBinding) {
    throw new ShapeError(`a tensor of ${bytes.byteLength} bytes exceeds this adapter's maxStorageBufferBindingSize (${ctx.caps.maxStorageBinding}); split the batch or the heads into several calls`, 'q');
  }
  const buffer = ctx.acquire(size);
  if (bytes.byteLength % 4 === 0) ctx.device.queue.writeBuffer(buffer, 0, bytes as Uint8Array<ArrayBuffer>);
  else {
    const padded = new Uint8Array(size);
    padded.set(bytes);
    ctx.device.queue.writeBuffer(buffer, 0, padded);
  }
  return { buffer, release: true };
}

export interface GpuRunStats {
  kernel: string;
  jobs: number;
  visitedTiles: number;
  dispatches: number;
}

export let lastGpuStats: GpuRunStats | null = null;

let poison = false;
/** Tests: fill device outputs with NaN before every dispatch, so unwritten elements show. */
export function setGpuOutputPoisoning(on: boolean): void {
  poison = on;
}

/** Meta buffer: seq table (9 words per sequence), plan table, tile plans, jobs, mask data, top-k thresholds. */
class MetaBuilder {
  words: number[] = [];
  push(xs: ArrayLike<number>): number {
    const at = this.words.length;
    for (let i = 0; i < xs.length; i++) this.words.push(xs[i]! | 0);
    return at;
  }
  reserve(n: number): number {
    const at = this.words.length;
    for (let i = 0; i < n; i++) this.words.push(0);
    return at;
  }
}

export async function runWebGpu(plan: AttentionPlan, q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor | null): Promise<void> {
  const ctx = await gpuContext();
  const caps = ctx.caps;
  const topk = plan.mask ? findTopK(plan.mask.node) : null;
  if (topk && topk.k > TOPK_MAX) throw new UnsupportedError(`topK(${topk.k}) exceeds the WebGPU threshold kernel's heap of ${TOPK_MAX} scores`, `topK(${TOPK_MAX}) or backend 'wasm'`);
  // Contiguous canonical layouts: dense [B, S, H, D] or varlen [total, H, D].
  const qc = q.contiguous(), kc = k.contiguous(), vc = v.contiguous();
  const G = plan.groupSize <= 64 ? plan.groupSize : 1;
  const NP = Math.floor(64 / G);
  const natural = plan.softcap > 0 || topk !== null;
  const mask = compileMaskWgsl(plan.mask?.node ?? null, plan.seqLenQ, plan.seqLenK);
  const variant: PortableFlashVariant = {
    kernel: 'flash_portable', fmt: plan.dtype, D: plan.headDim, DV: plan.headDimV, G,
    sg: caps.subgroups && caps.subgroupMinSize >= 16, natural, cap: plan.softcap > 0, maskKey: mask.key,
  };
  const key = variantKey(variant);
  const pipeline = await ctx.pipeline(key, portableSource(variant, mask.fn));

  // Row addressing (element strides) of the contiguous uploads.
  const outF32 = new Tensor(new Float32Array(plan.totalQ * plan.numHeads * plan.headDimV), plan.varlen ? [plan.totalQ, plan.numHeads, plan.headDimV] : [plan.batch, plan.seqLenQ, plan.numHeads, plan.headDimV]);
  const lseF32 = lse ? Tensor.zeros(lse.shape, 'f32') : null;
  const qv = rowView(plan, qc, 'q'), kv = rowView(plan, kc, 'k'), vv = rowView(plan, vc, 'k'), ov = rowView(plan, outF32, 'o');
  const lv = lseF32 ? lseView(plan, lseF32) : null;

  const meta = new MetaBuilder();
  const seqTable = meta.reserve(plan.batch * 9);
  const planIndex = new Map<string, number>();
  const plans: TilePlan[] = [];
  const seqPlan: (TilePlan | null)[] = [];
  for (let b = 0; b < plan.batch; b++) {
    const lenQ = plan.cuSeqlensQ[b + 1]! - plan.cuSeqlensQ[b]!, lenK = plan.cuSeqlensK[b + 1]! - plan.cuSeqlensK[b]!;
    const sk = `${lenQ},${lenK}`;
    let idx = planIndex.get(sk);
    if (idx === undefined) {
      idx = plans.length;
      planIndex.set(sk, idx);
      plans.push(planTiles(plan.mask, { seqLenQ: lenQ, seqLenK: lenK }, NP, GPU_TILE_K));
    }
    seqPlan.push(lenQ > 0 ? plans[idx]! : null);
    const w = [qv.seqBase[b]!, kv.seqBase[b]!, vv.seqBase[b]!, ov.seqBase[b]!, lv ? lv.seqBase[b]! : 0, lenQ, lenK, idx, plan.cuSeqlensQ[b]!];
    for (let t = 0; t < 9; t++) meta.words[seqTable + b * 9 + t] = w[t]!;
  }
  const planTable = meta.reserve(plans.length * 2);
  plans.forEach((tp, i) => {
    meta.words[planTable + i * 2] = meta.push(tp.rowStart);
    meta.words[planTable + i * 2 + 1] = meta.push(tp.entries);
  });
  const jobs: [number, number, number, number][] = [];
  let visited = 0;
  for (let b = 0; b < plan.batch; b++) {
    const tp = seqPlan[b];
    if (!tp) continue;
    for (let qt = 0; qt < tp.numQTiles; qt++) {
      const cost = tp.rowStart[qt + 1]! - tp.rowStart[qt]!;
      for (let hb = 0; hb < plan.numHeads / G; hb++) { jobs.push([b, hb, qt, cost]); visited += cost; }
    }
  }
  jobs.sort((a, z) => z[3] - a[3]);
  const jobTable = meta.push(jobs.flatMap(([b, hb, qt]) => [b, hb, qt]));
  // Top-k: thresholds [numHeads, totalQ] in the meta buffer, written by a first pass over the
  // `within` mask's tiles (64-row tiles, one job per (sequence, head, tile)).
  let topkPass: { pipeline: GPUComputePipeline; params: ArrayBuffer; jobs: number } | null = null;
  if (topk) {
    const thrBase = meta.reserve(plan.numHeads * Math.max(1, plan.totalQ));
    mask.data[mask.thrSlot] = thrBase;
    const within = compileMaskWgsl(topk.within, plan.seqLenQ, plan.seqLenK);
    const wPlanTable = meta.reserve(plans.length * 2);
    const withinMask = new Mask(topk.within);
    const wPlans = plans.map((tp) => planTiles(withinMask, { seqLenQ: tp.seqLenQ, seqLenK: tp.seqLenK }, 64, GPU_TILE_K));
    wPlans.forEach((tp, i) => {
      meta.words[wPlanTable + i * 2] = meta.push(tp.rowStart);
      meta.words[wPlanTable + i * 2 + 1] = meta.push(tp.entries);
    });
    const tjobs: number[] = [];
    for (let b = 0; b < plan.batch; b++) {
      const lenQ = plan.cuSeqlensQ[b + 1]! - plan.cuSeqlensQ[b]!;
      for (let h = 0; h < plan.numHeads; h++) for (let qt = 0; qt < Math.ceil(lenQ / 64); qt++) tjobs.push(b, h, qt);
    }
    const tJobTable = meta.push(tjobs);
    const wMaskBase = meta.push(within.data);
    const tv: TopKVariant = { kernel: 'topk_threshold', fmt: plan.dtype, D: plan.headDim, KK: topk.k, cap: plan.softcap > 0, maskKey: within.key };
    const tpipe = await ctx.pipeline(variantKey(tv), topkSource(tv, within.fn));
    const tp = new ArrayBuffer(16 * 4);
    const tu = new Uint32Array(tp), tf = new Float32Array(tp);
    tu.set([qv.rowStride, qv.headStride, kv.rowStride, kv.headStride, tjobs.length / 3, seqTable, wPlanTable, tJobTable, wMaskBase, thrBase, plan.totalQ, plan.groupSize]);
    tf[12] = plan.scale; tf[13] = plan.softcap; tf[14] = -Infinity; tf[15] = Infinity;
    topkPass = { pipeline: tpipe, params: tp, jobs: tjobs.length / 3 };
  }
  const maskBase = meta.push(mask.data);
  if (meta.words.length * 4 > caps.maxStorageBinding) throw new ShapeError('the kernel metadata (tile plans and mask data) exceeds the adapter\'s storage binding size', 'mask');

  const device = ctx.device;
  const uploads = [upload(ctx, qc), upload(ctx, kc), upload(ctx, vc)];
  const outBytes = Math.max(16, outF32.size * 4);
  const lseBytes = Math.max(16, (lseF32?.size ?? 1) * 4);
  const outBuf = ctx.acquire(outBytes), lseBuf = ctx.acquire(lseBytes);
  if (poison) {
    device.queue.writeBuffer(outBuf, 0, new Float32Array(outBytes / 4).fill(NaN));
    device.queue.writeBuffer(lseBuf, 0, new Float32Array(lseBytes / 4).fill(NaN));
  }
  const metaBuf = ctx.acquire(Math.max(16, meta.words.length * 4));
  device.queue.writeBuffer(metaBuf, 0, new Uint32Array(meta.words));
  const params = new ArrayBuffer(PARAM_WORDS * 4);
  const pu = new Uint32Array(params), pf = new Float32Array(params);
  pu.set([qv.rowStride, qv.headStride, kv.rowStride, kv.headStride, vv.rowStride, vv.headStride, ov.rowStride, ov.headStride,
    lv?.rowStride ?? 0, lv?.headStride ?? 0, jobs.length, lv ? 1 : 0, seqTable, planTable, jobTable, maskBase]);
  pf[16] = plan.scale; pf[17] = plan.softcap; pu[18] = plan.totalQ; pu[19] = plan.groupSize; pf[20] = -Infinity; pf[21] = NaN;
  const paramBuf = device.createBuffer({ size: params.byteLength, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  device.queue.writeBuffer(paramBuf, 0, params);
  try {
    await ctx.checked('attention (WebGPU)', async () => {
      if (topkPass && topkPass.jobs > 0) {
        const tbuf = device.createBuffer({ size: topkPass.params.byteLength, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
        device.queue.writeBuffer(tbuf, 0, topkPass.params);
        const bind = device.createBindGroup({
          layout: topkPass.pipeline.getBindGroupLayout(0),
          entries: [
            { binding: 0, resource: { buffer: tbuf } },
            { binding: 1, resource: { buffer: metaBuf } },
            { binding: 2, resource: { buffer: uploads[0]!.buffer } },
            { binding: 3, resource: { buffer: uploads[1]!.buffer } },
          ],
        });
        const enc = device.createCommandEncoder();
        const pass = enc.beginComputePass();
        pass.setPipeline(topkPass.pipeline);
        pass.setBindGroup(0, bind);
        pass.dispatchWorkgroups(Math.min(topkPass.jobs, 65535), Math.ceil(topkPass.jobs / 65535));
        pass.end();
        device.queue.submit([enc.finish()]);
        tbuf.destroy();
      }
      if (jobs.length > 0) {
        const bind = device.createBindGroup({
          layout: pipeline.getBindGroupLayout(0),
          entries: [
            { binding: 0, resource: { buffer: paramBuf } },
            { binding: 1, resource: { buffer: metaBuf } },
            { binding: 2, resource: { buffer: uploads[0]!.buffer } },
            { binding: 3, resource: { buffer: uploads[1]!.buffer } },
            { binding: 4, resource: { buffer: uploads[2]!.buffer } },
            { binding: 5, resource: { buffer: outBuf } },
            { binding: 6, resource: { buffer: lseBuf } },
          ],
        });
        const enc = device.createCommandEncoder();
        const pass = enc.beginComputePass();
        pass.setPipeline(pipeline);
        pass.setBindGroup(0, bind);
        pass.dispatchWorkgroups(Math.min(jobs.length, 65535), Math.ceil(jobs.length / 65535));
        pass.end();
        device.queue.submit([enc.finish()]);
      }
      const outData = await readBuffer(ctx, outBuf, outF32.size * 4);
      (outF32.data as Float32Array).set(new Float32Array(outData));
      if (lseF32) (lseF32.data as Float32Array).set(new Float32Array(await readBuffer(ctx, lseBuf, lseF32.size * 4)));
    });
  } finally {
    for (const u of uploads) if (u.release) ctx.release(u.buffer);
    ctx.release(outBuf); ctx.release(lseBuf); ctx.release(metaBuf);
    paramBuf.destroy();
  }
  if (plan.dtype !== out.dtype) throw new DTypeError(`out must have dtype ${plan.dtype}`, 'out');
  copyInto(outF32, out);
  if (lse && lseF32) copyInto(lseF32, lse);
  lastGpuStats = { kernel: key, jobs: jobs.length, visitedTiles: visited, dispatches: jobs.length > 0 ? 1 : 0 };
}

export async function readBuffer(ctx: GpuContext, src: GPUBuffer, bytes: number): Promise<ArrayBuffer> {
  const size = Math.max(4, Math.ceil(bytes / 4) * 4);
  const staging = ctx.device.createBuffer({ size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const enc = ctx.device.createCommandEncoder();
  enc.copyBufferToBuffer(src, 0, staging, 0, size);
  ctx.device.queue.submit([enc.finish()]);
  await staging.mapAsync(GPUMapMode.READ);
  const copy = staging.getMappedRange().slice(0, bytes);
  staging.unmap();
  staging.destroy();
  return copy;
}

export const webgpuBackend: HostBackend = { name: 'webgpu', run: runWebGpu };
