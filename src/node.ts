/**
 * Node-only entry point (`vlm-attention/node`): everything in the core plus the pieces that need
 * Node (files, worker threads configuration, Dawn's WebGPU, Redis, image decoding).
 */
export * from './index.js';
export { readNpyFile, writeNpyFile, readSafetensorsFile, writeSafetensorsFile, readArrays, readCapture, readCaptureManifest, writeCapture, exportCapture, captureStem, ensureDir, MANIFEST_FORMAT } from './viz/node-files.js';
export { startViewerServer, VIEWER_HOST, type ViewerServer, type ViewerServerOptions } from './viz/server.js';
export { loadViewerHtml, embedCapture, CAPTURE_MARKER } from './viz/viewer-html.js';
export { decodeImage, type DecodeImageOptions } from './io/image.js';
export { RedisFeatureStore, type RedisFeatureStoreOptions } from './kvcache/redis-store.js';
