/**
 * The texture array on WebGPU: the same 14 channels and normalisation as `computeTexture`
 * (texture.ts), computed per pixel on the GPU, then read back with the per-patch means.
 *
 * Passes (one dispatch each, 256 invocations per workgroup):
 *   1. colour: RGB copy, L*a*b* (D65), saturation, y / x / eccentricity;
 *   2. texture: Sobel Gx, Gy, magnitude of L* / 100 (replicated borders) and the local variance of
 *      L* / 100 in a (2r+1)² window; per-image min and max of these four channels by workgroup
 *      reduction and atomicMin/atomicMax on order-preserving u32 keys;
 *   3. normalise: min-max those four channels (a span ≤ 1e-6 gives 0);
 *   4. pool: one invocation per (channel, base patch) sums its featurePatch² pixels.
 * The crop and the box downsample to the work size stay on the CPU (cheap), as do the per-region
 * means (from the patch means).
 *
 * The WGSL lives here as a string rather than in kernels/webgpu/shaders/*.wgsl: the build embeds
 * that folder for the attention kernels, which this module does not own.
 */
import { gpuContext } from '../kernels/webgpu/device.js';
import { ValueError } from '../errors.js';
import { checkRgbImage, type RgbImage } from './image-ops.js';
import type { GridPlan } from './regions.js';
import { NUM_TEXTURE_CHANNELS, TEXTURE_CHANNELS, type TextureArray, type TextureOptions, cropAndResample, poolRegions } from './texture.js';

const WG = 256;

const COMMON = /* wgsl */ `
struct Params { W: u32, H: u32, n: u32, rad: u32, gridCols: u32, gridRows: u32, fp: u32, pad: u32 };
@group(0) @binding(0) var<uniform> P: Params;
`;

const COLOUR = COMMON + /* wgsl */ `
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> feat: array<f32>;
fn lin(v: f32) -> f32 { return select(pow((v + 0.055) / 1.055, 2.4), v / 12.92, v <= 0.04045); }
fn labf(t: f32) -> f32 { return select(7.787 * t + 4.0 / 29.0, pow(t, 1.0 / 3.0), t > 0.008856); }
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i >= P.n) { return; }
  let n = P.n;
  let r = src[i]; let g = src[n + i]; let b = src[2u * n + i];
  feat[i] = r; feat[n + i] = g; feat[2u * n + i] = b;
  let R = lin(r); let G = lin(g); let B = lin(b);
  let X = (0.412453 * R + 0.35758 * G + 0.180423 * B) / 0.95047;
  let Y = 0.212671 * R + 0.71516 * G + 0.072169 * B;
  let Z = (0.019334 * R + 0.119193 * G + 0.950227 * B) / 1.08883;
  let fx = labf(X); let fy = labf(Y); let fz = labf(Z);
  feat[3u * n + i] = select(903.3 * Y, 116.0 * fy - 16.0, Y > 0.008856) / 100.0;
  feat[4u * n + i] = (500.0 * (fx - fy) + 128.0) / 255.0;
  feat[5u * n + i] = (200.0 * (fy - fz) + 128.0) / 255.0;
  let mx = max(r, max(g, b)); let mn = min(r, min(g, b));
  feat[13u * n + i] = select(0.0, (mx - mn) / mx, mx > 0.0);
  let y = i / P.W; let x = i % P.W;
  let fyc = select(0.5, f32(y) / f32(P.H - 1u), P.H > 1u);
  let fxc = select(0.5, f32(x) / f32(P.W - 1u), P.W > 1u);
  feat[9u * n + i] = fyc; feat[10u * n + i] = fxc;
  feat[11u * n + i] = sqrt((fyc - 0.5) * (fyc - 0.5) + (fxc - 0.5) * (fxc - 0.5)) / 0.70710678118654752;
}`;

// Order-preserving f32 → u32 key: larger float, larger key.
const TEXTURE = COMMON + /* wgsl */ `
@group(0) @binding(1) var<storage, read_write> feat: array<f32>;
@group(0) @binding(2) var<storage, read_write> ranges: array<atomic<u32>, 8>;
var<workgroup> wmin: array<array<u32, ${WG}>, 4>;
var<workgroup> wmax: array<array<u32, ${WG}>, 4>;
fn key(v: f32) -> u32 { let b = bitcast<u32>(v); return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u); }
fn Lat(y: i32, x: i32) -> f32 {
  let yy = u32(clamp(y, 0, i32(P.H) - 1)); let xx = u32(clamp(x, 0, i32(P.W) - 1));
  return feat[3u * P.n + yy * P.W + xx];
}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let i = gid.x;
  var kmin = vec4<u32>(0xffffffffu); var kmax = vec4<u32>(0u);
  if (i < P.n) {
    let n = P.n;
    let y = i32(i / P.W); let x = i32(i % P.W);
    let gx = (Lat(y - 1, x + 1) + 2.0 * Lat(y, x + 1) + Lat(y + 1, x + 1) - Lat(y - 1, x - 1) - 2.0 * Lat(y, x - 1) - Lat(y + 1, x - 1)) / 8.0;
    let gy = (Lat(y + 1, x - 1) + 2.0 * Lat(y + 1, x) + Lat(y + 1, x + 1) - Lat(y - 1, x - 1) - 2.0 * Lat(y - 1, x) - Lat(y - 1, x + 1)) / 8.0;
    let gm = sqrt(gx * gx + gy * gy + 1e-8);
    let r = i32(P.rad);
    let y0 = max(0, y - r); let y1 = min(i32(P.H), y + r + 1); let x0 = max(0, x - r); let x1 = min(i32(P.W), x + r + 1);
    // Two-pass variance about the centre pixel's value (well conditioned in f32).
    let c = feat[3u * n + i];
    var s1 = 0.0; var s2 = 0.0;
    for (var yy = y0; yy < y1; yy++) {
      for (var xx = x0; xx < x1; xx++) {
        let d = feat[3u * n + u32(yy) * P.W + u32(xx)] - c;
        s1 += d; s2 += d * d;
      }
    }
    let cnt = f32((y1 - y0) * (x1 - x0));
    let m = s1 / cnt;
    let v = max(0.0, s2 / cnt - m * m);
    feat[6u * n + i] = gx; feat[7u * n + i] = gy; feat[8u * n + i] = gm; feat[12u * n + i] = v;
    kmin = vec4<u32>(key(gx), key(gy), key(gm), key(v));
    kmax = kmin;
  }
  for (var c = 0u; c < 4u; c++) { wmin[c][li] = kmin[c]; wmax[c][li] = kmax[c]; }
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s >>= 1u) {
    if (li < s) {
      for (var c = 0u; c < 4u; c++) {
        wmin[c][li] = min(wmin[c][li], wmin[c][li + s]);
        wmax[c][li] = max(wmax[c][li], wmax[c][li + s]);
      }
    }
    workgroupBarrier();
  }
  if (li == 0u) {
    for (var c = 0u; c < 4u; c++) { atomicMin(&ranges[c], wmin[c][0]); atomicMax(&ranges[4u + c], wmax[c][0]); }
  }
}`;

const NORMALISE = COMMON + /* wgsl */ `
@group(0) @binding(1) var<storage, read_write> feat: array<f32>;
@group(0) @binding(2) var<storage, read> ranges: array<u32, 8>;
fn unkey(k: u32) -> f32 { return bitcast<f32>(select(~k, k & 0x7fffffffu, (k & 0x80000000u) != 0u)); }
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i >= P.n) { return; }
  let chans = vec4<u32>(6u, 7u, 8u, 12u);
  for (var c = 0u; c < 4u; c++) {
    let lo = unkey(ranges[c]); let hi = unkey(ranges[4u + c]);
    let o = chans[c] * P.n + i;
    feat[o] = select(0.0, (feat[o] - lo) / (hi - lo), hi - lo > 1e-6);
  }
}`;

const POOL = COMMON + /* wgsl */ `
@group(0) @binding(1) var<storage, read> feat: array<f32>;
@group(0) @binding(2) var<storage, read_write> patches: array<f32>;
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let g = P.gridRows * P.gridCols;
  let t = gid.x;
  if (t >= ${NUM_TEXTURE_CHANNELS}u * g) { return; }
  let c = t / g; let q = t % g;
  let pr = q / P.gridCols; let pc = q % P.gridCols;
  var s = 0.0;
  for (var y = pr * P.fp; y < (pr + 1u) * P.fp; y++) {
    for (var x = pc * P.fp; x < (pc + 1u) * P.fp; x++) { s += feat[c * P.n + y * P.W + x]; }
  }
  patches[t] = s / f32(P.fp * P.fp);
}`;

/**
 * `computeTexture` on WebGPU (same result within f32 rounding). Acquires the device through the
 * WebGPU backend's device layer (Dawn in Node, navigator.gpu in browsers); DeviceError when none.
 */
export async function computeTextureGpu(image: RgbImage, plan: GridPlan, options: TextureOptions = {}): Promise<TextureArray> {
  checkRgbImage(image);
  if (image.width !== plan.imageWidth || image.height !== plan.imageHeight) {
    throw new ValueError(`image is ${image.width}×${image.height} but the grid plan was made for ${plan.imageWidth}×${plan.imageHeight}`, 'image');
  }
  const rad = options.localVarianceRadius ?? 3;
  if (!Number.isInteger(rad) || rad < 0 || rad > 64) throw new ValueError(`localVarianceRadius must be an integer in 0..64, got ${rad}`, 'localVarianceRadius');
  const ctx = await gpuContext();
  const device = ctx.device;
  const work = cropAndResample(image, plan);
  const W = plan.workWidth, H = plan.workHeight, n = W * H, C = NUM_TEXTURE_CHANNELS, g = plan.gridRows * plan.gridCols;
  const [pColour, pTexture, pNorm, pPool] = await Promise.all([
    ctx.pipeline(`relevance-texture-colour-${WG}`, COLOUR), ctx.pipeline(`relevance-texture-sobel-var-${WG}`, TEXTURE),
    ctx.pipeline(`relevance-texture-normalise-${WG}`, NORMALISE), ctx.pipeline(`relevance-texture-pool-${WG}`, POOL),
  ]);
  const STORAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
  const params = device.createBuffer({ size: 32, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  device.queue.writeBuffer(params, 0, new Uint32Array([W, H, n, rad, plan.gridCols, plan.gridRows, plan.featurePatch, 0]));
  const src = ctx.acquire(3 * n * 4, STORAGE), feat = ctx.acquire(C * n * 4, STORAGE), patchesBuf = ctx.acquire(C * g * 4, STORAGE);
  const ranges = ctx.acquire(32, STORAGE);
  const readFeat = device.createBuffer({ size: C * n * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const readPatches = device.createBuffer({ size: C * g * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  try {
    return await ctx.checked('texture array', async () => {
      device.queue.writeBuffer(src, 0, work.data.buffer, work.data.byteOffset, 3 * n * 4);
      device.queue.writeBuffer(ranges, 0, new Uint32Array([0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0, 0, 0, 0]));
      const bind = (pipe: GPUComputePipeline, bufs: GPUBuffer[]) => device.createBindGroup({
        layout: pipe.getBindGroupLayout(0),
        entries: [{ binding: 0, resource: { buffer: params } }, ...bufs.map((b, k) => ({ binding: k + 1, resource: { buffer: b } }))],
      });
      const enc = device.createCommandEncoder({ label: 'relevance texture' });
      const pass = enc.beginComputePass();
      const groups = Math.ceil(n / WG);
      pass.setPipeline(pColour); pass.setBindGroup(0, bind(pColour, [src, feat])); pass.dispatchWorkgroups(groups);
      pass.setPipeline(pTexture); pass.setBindGroup(0, bind(pTexture, [feat, ranges])); pass.dispatchWorkgroups(groups);
      pass.setPipeline(pNorm); pass.setBindGroup(0, bind(pNorm, [feat, ranges])); pass.dispatchWorkgroups(groups);
      pass.setPipeline(pPool); pass.setBindGroup(0, bind(pPool, [feat, patchesBuf])); pass.dispatchWorkgroups(Math.ceil((C * g) / WG));
      pass.end();
      enc.copyBufferToBuffer(feat, 0, readFeat, 0, C * n * 4);
      enc.copyBufferToBuffer(patchesBuf, 0, readPatches, 0, C * g * 4);
      device.queue.submit([enc.finish()]);
      await Promise.all([readFeat.mapAsync(GPUMapMode.READ), readPatches.mapAsync(GPUMapMode.READ)]);
      const pixels = new Float32Array(readFeat.getMappedRange().slice(0));
      const patches = new Float32Array(readPatches.getMappedRange().slice(0));
      readFeat.unmap(); readPatches.unmap();
      const regions = poolRegions(patches, C, plan);
      return { plan, channels: TEXTURE_CHANNELS, pixels, patches, regions, work };
    });
  } finally {
    ctx.release(src, STORAGE); ctx.release(feat, STORAGE); ctx.release(patchesBuf, STORAGE); ctx.release(ranges, STORAGE);
    readFeat.destroy(); readPatches.destroy(); params.destroy();
  }
}
