/**
 * The offline cost calculator page: the same model as `vlm-attention cost`, in a form, with two plots
 * (time lower bound vs sequence length, KV bytes vs batch) for several devices. Bundled by
 * scripts/build-cost-page.mjs into one self-contained HTML file; it imports only the cost model (no
 * kernels), and never touches the network.
 */
import { slidingWindow } from '../../masks/mask.js';
import { type AttentionShape, attentionCost } from '../attention-cost.js';
import { budgetSavings, VLM_PRESETS } from '../budget.js';
import { DEVICE_PROFILES, type DeviceProfile } from '../devices.js';
import { type KvCacheDType, kvCacheSize, maxBatchForMemory } from '../kv-cache.js';
import { attentionRoofline } from '../roofline.js';
import { formatBytes, formatFlops, formatSeconds } from '../units.js';
import { TOKENIZERS, visualTokens } from '../visual-tokens.js';
import { svgPlot } from './plot.js';

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2', '#17becf', '#7f7f7f', '#bcbd22', '#393b79'];
const $ = <T extends HTMLElement = HTMLInputElement>(id: string) => document.getElementById(id) as T;
const val = (id: string) => $(id).value.trim();
const int = (id: string) => (val(id) === '' ? undefined : Number(val(id)));
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');

function table(rows: (string | number)[][], head = true): string {
  return `<table>${rows.map((r, i) => `<tr>${r.map((c) => (i === 0 && head ? `<th>${esc(String(c))}</th>` : `<td>${esc(String(c))}</td>`)).join('')}</tr>`).join('')}</table>`;
}

function selectedDevices(): DeviceProfile[] {
  return Array.from(document.querySelectorAll<HTMLInputElement>('input[name=device]:checked')).map((c) => DEVICE_PROFILES[c.value]!);
}

function attentionShape(seqLen?: number): AttentionShape {
  const mask = val('mask');
  const sq = seqLen ?? int('seqLenQ');
  const sk = seqLen ?? (int('seqLenK') ?? sq);
  return {
    batch: int('batch'), seqLenQ: sq, seqLenK: sk, numHeads: int('numHeads')!, numKvHeads: int('numKvHeads'), headDim: int('headDim')!,
    dtype: val('dtype') as AttentionShape['dtype'], causal: mask === 'causal' || mask === 'causal-window',
    mask: mask === 'causal-window' ? slidingWindow(int('window') ?? 0, 0) : null,
  };
}

function tiling() {
  return { tileQ: int('tileQ') ?? 64, tileK: int('tileK') ?? 64 };
}

function fail(id: string, e: unknown): void {
  const err = e as Error;
  $(id).innerHTML = `<div class="error">${esc(err.name)}: ${esc(err.message)}</div>`;
}

function renderAttention(): void {
  try {
    const cost = attentionCost(attentionShape(), { tiling: tiling() });
    const kernel = val('kernel') as 'flash' | 'standard';
    const t = cost.tiling;
    const rows: (string | number)[][] = [['device', 'unit', 'peak', 'bandwidth', 'compute', 'memory', 'time ≥', 'bound', 'labels']];
    for (const p of selectedDevices()) {
      try {
        const r = attentionRoofline(cost, p, { kernel });
        rows.push([p.name, r.unit, `${formatFlops(r.peak.value)}/s`, `${formatBytes(r.bandwidth.value)}/s`, formatSeconds(r.computeSeconds), formatSeconds(r.memorySeconds), formatSeconds(r.seconds), r.bound, `${r.peak.label}/${r.bandwidth.label}`]);
      } catch (e) {
        rows.push([p.name, '-', '-', '-', '-', '-', '-', (e as Error).message, '-']);
      }
    }
    $('attention-out').innerHTML =
      `<p>Tiles ${t.tileQ}×${t.tileK}: <b>${t.visitedTiles}</b> of ${t.totalTiles} visited (${(t.visitedFraction * 100).toFixed(1)}%; ${t.fullTiles} full, ${t.partialTiles} partial). Mask: ${esc(cost.shape.mask)}.</p>` +
      table([
        ['FLOPs', 'QKᵀ', 'PV', 'softmax', 'total', 'nominal 4·B·H·Sq·Sk·d'],
        ['', formatFlops(cost.flops.qk), formatFlops(cost.flops.pv), formatFlops(cost.flops.softmax), formatFlops(cost.flops.total), formatFlops(cost.flops.nominal)],
      ]) +
      table([
        ['bytes', 'Q', 'K', 'V', 'O', 'S and P', 'total', 'FLOP/byte'],
        ['flash', formatBytes(cost.bytes.flash.q), formatBytes(cost.bytes.flash.k), formatBytes(cost.bytes.flash.v), formatBytes(cost.bytes.flash.o), '-', formatBytes(cost.bytes.flash.total), cost.intensity.flash.toFixed(1)],
        ['standard', formatBytes(cost.bytes.standard.q), formatBytes(cost.bytes.standard.k), formatBytes(cost.bytes.standard.v), formatBytes(cost.bytes.standard.o), formatBytes(cost.bytes.standard.scores), formatBytes(cost.bytes.standard.total), cost.intensity.standard.toFixed(1)],
      ]) +
      table(rows);
    // Time vs sequence length (self-attention, the form's heads / dims / mask).
    const lengths: number[] = [];
    for (let n = 128; n <= (int('maxSeq') ?? 32768); n *= 2) lengths.push(n);
    const costs = lengths.map((n) => attentionCost(attentionShape(n), { tiling: tiling() }));
    const series = selectedDevices().flatMap((p, i) => {
      try {
        return [{ name: p.name, color: COLORS[i % COLORS.length]!, points: costs.map((c, j) => [lengths[j]!, attentionRoofline(c, p, { kernel }).seconds] as [number, number]) }];
      } catch {
        return [];
      }
    });
    $('plot-time').innerHTML = svgPlot({
      title: `Attention time lower bound (${kernel}), B${int('batch') ?? 1} H${int('numHeads')} d${int('headDim')} ${val('dtype')} ${val('mask')}`,
      xLabel: 'sequence length (Sq = Sk)', yLabel: 'seconds (log)', series, logX: true, logY: true, xTicks: lengths,
      formatX: (x) => (x >= 1024 ? `${x / 1024}k` : String(x)), formatY: (y) => formatSeconds(y, 2),
    });
  } catch (e) {
    fail('attention-out', e);
    $('plot-time').innerHTML = '';
  }
}

function renderKv(): void {
  try {
    const input = {
      numLayers: int('kvLayers')!, numKvHeads: int('kvHeads')!, numHeads: int('kvNumHeads'), headDim: int('kvHeadDim')!, seqLen: int('kvSeqLen')!,
      dtype: val('kvDtype') as KvCacheDType, blockSizeTokens: int('kvBlock'), sharedPrefixTokens: int('kvShared'),
    };
    const batch = int('kvBatch') ?? 1;
    const k = kvCacheSize({ ...input, batch });
    const rows: (string | number)[][] = [['', 'value'], ['per token (all layers)', formatBytes(k.bytesPerToken)], ['per layer', formatBytes(k.perLayerBytes)], ['contiguous', formatBytes(k.contiguousBytes)]];
    if (k.paged) rows.push(['blocks', `${k.paged.totalBlocks} × ${formatBytes(k.paged.blockBytes)} (${k.paged.sharedBlocks} shared)`], ['last-block waste', `${k.paged.wasteTokens} tokens, ${formatBytes(k.paged.wasteBytes)}`]);
    if (k.scaleBytes) rows.push(['int8 scales', formatBytes(k.scaleBytes)]);
    rows.push(['total', formatBytes(k.totalBytes)]);
    for (const p of selectedDevices()) {
      const m = maxBatchForMemory({ ...input, memoryBytes: p.memoryBytes.value });
      rows.push([`max batch on ${p.name} (${formatBytes(p.memoryBytes.value)}, no weights)`, String(m.batch)]);
    }
    $('kv-out').innerHTML = table(rows);
    // KV bytes vs batch for MHA / GQA / MQA with the form's numHeads.
    const H = int('kvNumHeads') ?? input.numKvHeads;
    const variants = [...new Set([H, input.numKvHeads, Math.max(1, Math.floor(H / 8)), 1])].filter((hk) => H % hk === 0).sort((a, b) => b - a);
    const batches = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512];
    const series = variants.map((hk, i) => ({
      name: hk === H ? `MHA (${hk} KV heads)` : hk === 1 ? 'MQA (1 KV head)' : `GQA-${hk}`, color: COLORS[i]!,
      points: batches.map((b) => [b, kvCacheSize({ ...input, numHeads: undefined, numKvHeads: hk, batch: b }).totalBytes] as [number, number]),
    }));
    $('plot-kv').innerHTML = svgPlot({
      title: `KV cache, ${input.numLayers} layers × ${input.seqLen} tokens, ${input.dtype}`, xLabel: 'batch (sequences)', yLabel: 'bytes (log)',
      series, logX: true, logY: true, formatY: (y) => formatBytes(y, 2), xTicks: batches,
      hlines: selectedDevices().filter((p, i, a) => a.findIndex((q) => q.memoryBytes.value === p.memoryBytes.value) === i).map((p, i) => ({ y: p.memoryBytes.value, label: `${p.name} ${formatBytes(p.memoryBytes.value, 3)}`, color: COLORS[(i + 5) % COLORS.length]! })),
    });
  } catch (e) {
    fail('kv-out', e);
    $('plot-kv').innerHTML = '';
  }
}

function renderTokens(): void {
  try {
    const image = { width: int('imgW')!, height: int('imgH')! };
    const tk = val('tokenizer');
    const fixed = tk.startsWith('clip') || tk.startsWith('siglip');
    const t = visualTokens(tk, fixed ? undefined : image);
    let html = `<p><b>${t.llmTokens}</b> LLM tokens — ${esc(t.detail)}</p>`;
    const model = val('vlm');
    const budget = int('budget');
    if (budget !== undefined) {
      const s = budgetSavings({ model, image, budget, textTokens: int('textTokens'), generatedTokens: int('generated') });
      html += table([
        ['', 'visual', 'attention FLOPs', 'LLM FLOPs', 'KV bytes'],
        ['native', s.baseline.visualTokens, formatFlops(s.baseline.attentionFlops), formatFlops(s.baseline.llmFlops), formatBytes(s.baseline.kvBytes)],
        ['budget', s.withBudget.visualTokens, formatFlops(s.withBudget.attentionFlops), formatFlops(s.withBudget.llmFlops), formatBytes(s.withBudget.kvBytes)],
        ['saved', s.saved.visualTokens, formatFlops(s.saved.attentionFlops), formatFlops(s.saved.llmFlops), formatBytes(s.saved.kvBytes)],
      ]) + `<p>${esc(s.model)}: ${esc(s.tokenizerDetail)}; vision encoder ${formatFlops(s.encoderFlops)} (unchanged by the budget).</p>`;
    }
    $('tokens-out').innerHTML = html;
  } catch (e) {
    fail('tokens-out', e);
  }
}

function renderAll(): void {
  renderAttention();
  renderKv();
  renderTokens();
  document.body.dataset.ready = String(Number(document.body.dataset.ready ?? '0') + 1);
}

function init(): void {
  const box = $<HTMLDivElement>('devices');
  box.innerHTML = Object.values(DEVICE_PROFILES).map((p) =>
    `<label title="${esc(p.displayName)}"><input type="checkbox" name="device" value="${p.name}"${['h200', 'h200-webgpu', 'a100', 'rtx4090', 'apple-m4', 'cpu-wasm-2core'].includes(p.name) ? ' checked' : ''}> ${esc(p.name)}</label>`).join(' ');
  $<HTMLSelectElement>('tokenizer').innerHTML = TOKENIZERS.filter((t) => t !== 'vit').map((t) => `<option${t === 'qwen2-vl' ? ' selected' : ''}>${t}</option>`).join('');
  $<HTMLSelectElement>('vlm').innerHTML = Object.keys(VLM_PRESETS).map((m) => `<option${m === 'qwen2-vl-7b' ? ' selected' : ''}>${m}</option>`).join('');
  $('sources').innerHTML = table([['device', 'figure', 'value', 'label', 'source'], ...Object.values(DEVICE_PROFILES).flatMap((p) => {
    const rows: string[][] = [];
    for (const [dt, pk] of Object.entries(p.peaks)) {
      if (pk?.tensor) rows.push([p.name, `${dt} tensor`, `${formatFlops(pk.tensor.value)}/s`, pk.tensor.label, pk.tensor.source]);
      if (pk?.vector) rows.push([p.name, `${dt} vector`, `${formatFlops(pk.vector.value)}/s`, pk.vector.label, pk.vector.source]);
    }
    rows.push([p.name, 'bandwidth', `${formatBytes(p.memoryBandwidth.value)}/s`, p.memoryBandwidth.label, p.memoryBandwidth.source]);
    rows.push([p.name, 'memory', formatBytes(p.memoryBytes.value), p.memoryBytes.label, p.memoryBytes.source]);
    return rows;
  })]);
  document.querySelectorAll('input, select').forEach((el) => el.addEventListener('change', renderAll));
  renderAll();
}

if (typeof document !== 'undefined') {
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
}
