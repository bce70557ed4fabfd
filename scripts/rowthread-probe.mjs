// Feasibility probe for an f32 flash kernel with one query row per thread (or per TPR threads), Q and O held
// in registers, K/V chunks staged in workgroup memory and read as broadcasts, and the online softmax kept
// per thread (no cross-lane row reductions; with TPR = 2 one shuffle a score). Stripped down: f32 BSHD,
// self-attention, no mask, no GQA; a few rows checked against a float64 reference. The portable kernel's
// S tile (4 rows × 4 keys a thread) reads two workgroup vec4s per 16 FMAs and stages Qᵀ again every tile;
// here each broadcast K/V vec4 feeds 4 FMAs of every thread in the workgroup.
// Usage (after npm run build; on the device): node scripts/rowthread-probe.mjs [WG:BKC:SB:TPR …]
import { gpuContext, randn } from '../dist/index.js';
import { timeGpu } from './lib/gpu-time.mjs';

const ctx = await gpuContext();
const device = ctx.device;
const configs = (process.argv.slice(2).length ? process.argv.slice(2) : ['64:16:8:1', '128:16:8:1', '64:16:8:2', '128:32:8:2', '128:16:4:2'])
  .map((s) => { const [WG, BKC, SB, TPR] = s.split(':').map(Number); return { WG, BKC, SB, TPR }; });
const shapes = (process.env.SHAPES ?? 'vitL:8:16:577:64,8k:1:16:8192:64,qwen:1:16:5329:80').split(',')
  .map((s) => { const [name, B, H, N, D] = s.split(':'); return { name, B: +B, H: +H, N: +N, D: +D }; });

const maxOf = (xs) => (xs.length === 1 ? xs[0] : `max(${maxOf(xs.slice(0, xs.length >> 1))}, ${maxOf(xs.slice(xs.length >> 1))})`);
const each = (n, f) => Array.from({ length: n }, (_, i) => f(i)).join('\n');

function source({ WG, BKC, SB, TPR }, { H, N, D }) {
  const D4 = D / 4, CH = D4 / TPR, RW = WG / TPR, scale = Math.LOG2E / Math.sqrt(D);
  if (!Number.isInteger(CH) || BKC % SB !== 0) return null;
  return `${TPR > 1 ? 'enable subgroups;' : ''}
@group(0) @binding(0) var<storage, read> Q: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> K: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> V: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> O: array<vec4<f32>>;
const N: u32 = ${N}u;
const H: u32 = ${H}u;
const D4: u32 = ${D4}u;
const BKC: u32 = ${BKC}u;
var<workgroup> sK: array<vec4<f32>, ${BKC * D4}>;
var<workgroup> sV: array<vec4<f32>, ${BKC * D4}>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let b = wg.y / H;
  let h = wg.y % H;
  let half = lid % ${TPR}u;
  let row = wg.x * ${RW}u + lid / ${TPR}u;
  let rr = min(row, N - 1u);
  let qb = ((b * N + rr) * H + h) * D4 + half;
${each(CH, (i) => `  let q${i} = Q[qb + ${i * TPR}u] * ${scale};`)}
${each(CH, (i) => `  var o${i} = vec4<f32>(0.0);`)}
  var m = -1.0e30;
  var l = 0.0;
  let kvb = b * N * H * D4 + h * D4;
  for (var k0 = 0u; k0 < N; k0 += BKC) {
    for (var t = 0u; t < ${Math.ceil((BKC * D4) / WG)}u; t++) {
      let i = lid + t * ${WG}u;
      if (i >= ${BKC * D4}u) { break; }
      let j = i / D4;
      let c = i % D4;
      let key = k0 + j;
      var kx = vec4<f32>(0.0);
      var vx = vec4<f32>(0.0);
      if (key < N) { kx = K[kvb + key * H * D4 + c]; vx = V[kvb + key * H * D4 + c]; }
      sK[i] = kx;
      sV[i] = vx;
    }
    workgroupBarrier();
    let nk = N - k0;
    for (var jb = 0u; jb < BKC; jb += ${SB}u) {
${each(SB, (j) => `      var a${j} = q0 * sK[(jb + ${j}u) * D4 + half];
${each(CH - 1, (i) => `      a${j} = fma(q${i + 1}, sK[(jb + ${j}u) * D4 + ${(i + 1) * TPR}u + half], a${j});`)}
      var s${j} = (a${j}.x + a${j}.y) + (a${j}.z + a${j}.w);
${each(Math.log2(TPR), (x) => `      s${j} += subgroupShuffleXor(s${j}, ${1 << x}u);`)}
      s${j} = select(-1.0e30, s${j}, jb + ${j}u < nk);`)}
      let mx = ${maxOf(Array.from({ length: SB }, (_, j) => `s${j}`))};
      if (mx > m + 8.0) {
        let al = exp2(m - mx);
        l *= al;
${each(CH, (i) => `        o${i} *= al;`)}
        m = mx;
      }
${each(SB, (j) => `      let p${j} = exp2(s${j} - m);`)}
      l += ${Array.from({ length: SB }, (_, j) => `p${j}`).join(' + ')};
${each(SB, (j) => each(CH, (i) => `      o${i} = fma(vec4<f32>(p${j}), sV[(jb + ${j}u) * D4 + ${i * TPR}u + half], o${i});`))}
    }
    workgroupBarrier();
  }
  if (row < N) {
    let inv = 1.0 / l;
    let ob = ((b * N + row) * H + h) * D4 + half;
${each(CH, (i) => `    O[ob + ${i * TPR}u] = o${i} * inv;`)}
  }
}`;
}

function refRow(q, k, v, { H, N, D }, b, h, i) {
  const at = (j) => ((b * N + j) * H + h) * D;
  const s = new Float64Array(N);
  let mx = -Infinity;
  for (let j = 0; j < N; j++) {
    let x = 0;
    for (let c = 0; c < D; c++) x += q[at(i) + c] * k[at(j) + c];
    s[j] = x / Math.sqrt(D);
    mx = Math.max(mx, s[j]);
  }
  let l = 0;
  const o = new Float64Array(D);
  for (let j = 0; j < N; j++) {
    const p = Math.exp(s[j] - mx);
    l += p;
    for (let c = 0; c < D; c++) o[c] += p * v[at(j) + c];
  }
  return o.map((x) => x / l);
}

for (const shape of shapes) {
  const { name, B, H, N, D } = shape;
  const n = B * N * H * D;
  const host = [1, 2, 3].map((seed) => randn([n], seed).toFloat32());
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
  const bufs = host.map((a) => { const g = device.createBuffer({ size: a.byteLength, usage }); device.queue.writeBuffer(g, 0, a); return g; });
  const out = device.createBuffer({ size: n * 4, usage });
  const rd = device.createBuffer({ size: n * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const rows = [[0, 0, 0], [0, 0, N - 1], [B - 1, H - 1, N >> 1], [B - 1, H - 1, 1]];
  const refs = rows.map(([b, h, i]) => refRow(...host, shape, b, h, i));
  const flops = 4 * B * H * N * N * D;
  const line = [];
  for (const cfg of configs) {
    const code = source(cfg, shape);
    const tag = `${cfg.WG}:${cfg.BKC}:${cfg.SB}:${cfg.TPR}`;
    if (!code) { line.push(`${tag} n/a`); continue; }
    try {
      const module = device.createShaderModule({ code });
      const errs = (await module.getCompilationInfo()).messages.filter((m) => m.type === 'error');
      if (errs.length) throw new Error(errs.map((m) => `${m.lineNum}:${m.linePos} ${m.message}`).join(' | '));
      const pipeline = await device.createComputePipelineAsync({ layout: 'auto', compute: { module, entryPoint: 'main' } });
      const bind = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [...bufs, out].map((buffer, binding) => ({ binding, resource: { buffer } })) });
      const groups = [Math.ceil(N / (cfg.WG / cfg.TPR)), B * H];
      const encode = (enc) => { const p = enc.beginComputePass(); p.setPipeline(pipeline); p.setBindGroup(0, bind); p.dispatchWorkgroups(...groups); p.end(); };
      // Poisoned output, one call, read back, checked.
      const poison = new Float32Array(n).fill(NaN);
      device.queue.writeBuffer(out, 0, poison);
      const enc = device.createCommandEncoder();
      encode(enc);
      enc.copyBufferToBuffer(out, 0, rd, 0, n * 4);
      device.queue.submit([enc.finish()]);
      await rd.mapAsync(GPUMapMode.READ);
      const o = new Float32Array(rd.getMappedRange().slice(0));
      rd.unmap();
      let err = 0;
      rows.forEach(([b, h, i], x) => { for (let c = 0; c < D; c++) err = Math.max(err, Math.abs(o[((b * N + i) * H + h) * D + c] - refs[x][c])); });
      if (!(err < 1e-4)) err = `WRONG ${err}`;
      const ms = await timeGpu(device, encode);
      line.push(`${tag} ${ms.toFixed(3)} ms (${(flops / ms / 1e9).toFixed(1)} TF, err ${typeof err === 'number' ? err.toExponential(1) : err})`);
    } catch (e) {
      line.push(`${tag} ERROR ${String(e.message ?? e).replace(/\n/g, ' ').slice(0, 300)}`);
    }
  }
  console.log(`${name} B${B} H${H} N${N} d${D}: ${line.join(' | ')}`);
  for (const b of [...bufs, out, rd]) b.destroy();
}
