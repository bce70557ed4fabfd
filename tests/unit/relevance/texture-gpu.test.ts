/**
 * The WebGPU texture array equals the CPU one (f32 rounding). Runs on whatever adapter Dawn finds;
 * with no GPU, SwiftShader: VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json (set here when
 * unset and the file exists). Under CI=true a missing adapter fails the test; elsewhere too — it is
 * never skipped.
 */
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { describe, expect, it } from 'vitest';
import { computeTexture, NUM_TEXTURE_CHANNELS, TEXTURE_CHANNELS } from '../../../src/relevance/texture.js';
import { computeTextureGpu } from '../../../src/relevance/texture-gpu.js';
import { planGrid } from '../../../src/relevance/regions.js';
import { planRelevance, runRelevance } from '../../../src/relevance/pipeline.js';
import { generateScene } from '../../../src/relevance/scene.js';
import { mulberry32 } from '../../../src/tensor/tensor.js';
import { expectClose } from '../../helpers/close.js';

const SWIFTSHADER = '/usr/lib/chromium/vk_swiftshader_icd.json';
process.env.XDG_RUNTIME_DIR ??= tmpdir();
if (!process.env.VK_ICD_FILENAMES && !process.env.VK_DRIVER_FILES && existsSync(SWIFTSHADER)) process.env.VK_ICD_FILENAMES = SWIFTSHADER;

describe('texture array on WebGPU', () => {
  it('equals the CPU texture array (pixels, patch means, region means) on random images and a scene', async () => {
    const rnd = mulberry32(17);
    const cases = [
      { img: { width: 45, height: 33, data: Float32Array.from({ length: 3 * 45 * 33 }, () => rnd()) }, grid: { patchSize: 7, regionRows: 2, regionCols: 3 } },
      { img: generateScene({ width: 300, height: 200, seed: 5 }).image, grid: { patchSize: 14, regionRows: 3, regionCols: 4 } },
      { img: generateScene({ width: 1024, height: 1024, seed: 3 }).image, grid: { patchSize: 14, regionRows: 8, regionCols: 8 } },
    ];
    for (const { img, grid } of cases) {
      const plan = planGrid(img.width, img.height, grid);
      const cpu = computeTexture(img, plan), gpu = await computeTextureGpu(img, plan);
      const n = plan.workWidth * plan.workHeight;
      for (let c = 0; c < NUM_TEXTURE_CHANNELS; c++) {
        expectClose(gpu.pixels.subarray(c * n, (c + 1) * n), cpu.pixels.subarray(c * n, (c + 1) * n), { atol: 2e-4, label: `${TEXTURE_CHANNELS[c]} ${img.width}x${img.height}` });
      }
      expectClose(gpu.patches, cpu.patches, { atol: 5e-5, label: 'patches' });
      expectClose(gpu.regions, cpu.regions, { atol: 5e-5, label: 'regions' });
    }
  }, 300_000);

  it("the pipeline with backend 'webgpu' allocates like the CPU pipeline", async () => {
    const scene = generateScene({ width: 392, height: 392, seed: 9 });
    const opts = { query: scene.objects[1]!.colour, budget: 800, min: 16, grid: { regionRows: 5, regionCols: 5 } };
    const cpu = await runRelevance(scene.image, planRelevance(392, 392, opts));
    const gpu = await runRelevance(scene.image, planRelevance(392, 392, { ...opts, backend: 'webgpu' }));
    expect(Array.from(gpu.allocation.tokens)).toEqual(Array.from(cpu.allocation.tokens));
  }, 300_000);
});
