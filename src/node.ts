/**
 * Node-only entry point (`vlm-attention/node`): everything in the core plus the pieces that need
 * Node (files, worker threads configuration, Dawn's WebGPU, Redis, image decoding).
 */
export * from './index.js';
