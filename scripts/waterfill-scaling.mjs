// Water-filling (allocator A) time against the number of regions, budget near capacity (384 of 400 a region):
// lambda is found by bisection over the sorted breakpoints, O(R log R).
//   npm run build && node scripts/waterfill-scaling.mjs
import { allocateWaterFill } from '../dist/index.js';

const rows = [];
for (const R of [2000, 4000, 8000, 16000, 32000]) {
  const rho = Array.from({ length: R }, (_, i) => 1 + ((i * 7919) % 1000));
  allocateWaterFill(rho, { budget: R * 384, min: 64, max: 400, quantum: 16 }); // warm-up
  const t0 = performance.now();
  const a = allocateWaterFill(rho, { budget: R * 384, min: 64, max: 400, quantum: 16 });
  rows.push({ regions: R, ms: +(performance.now() - t0).toFixed(1), exactBudget: a.tokens.reduce((s, t) => s + t, 0) === R * 384 });
}
console.table(rows);
