// Runnable copy of the README's 'relevance' example (node examples/relevance.mjs after npm run build).
import { demoScene, planRelevance, runRelevance } from '../dist/index.js';
const scene = demoScene();                        // procedural scene with known object masks
const plan = planRelevance(scene.width, scene.height, { query: 'red striped', budget: 1600 });
const result = await runRelevance(scene.image, plan);
console.log(result.allocation.total, result.timings); // 1600 tokens, ms per stage
