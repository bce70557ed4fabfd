import { type HostBackend, registerBackend } from '../../attention/backend.js';
import { flashAttentionTS } from './ts-kernel.js';

/** The plain TypeScript backend ('cpu-ts'): single-threaded, runs anywhere. */
export const tsBackend: HostBackend = {
  name: 'cpu-ts',
  run(plan, q, k, v, out, lse) {
    flashAttentionTS(plan, q, k, v, out, lse);
  },
};

registerBackend('cpu-ts', () => tsBackend);
