import { defineConfig } from 'vitest/config';

// One config for the lab (vite) and its tests (vitest).
export default defineConfig({
  server: {
    host: '127.0.0.1',
    port: 5173,
    // Cross-origin isolation: SharedArrayBuffer, so that the WebAssembly backends (ours, jax-js's,
    // TF.js's) run multithreaded. Every resource the pages load is same-origin or a data: URL.
    headers: { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' },
  },
  worker: { format: 'es' },
  // The benchmark's peers (bench/peers/, loaded on demand): pre-bundled at start, so that their first
  // import in a page does not trigger a re-optimisation (and a reload) mid-session.
  optimizeDeps: { include: ['@jax-js/jax', '@tensorflow/tfjs-core', '@tensorflow/tfjs-backend-webgpu', '@tensorflow/tfjs-backend-wasm'] },
  build: { target: 'es2022' },
  test: {
    include: ['src/**/*.test.ts', 'proxy/**/*.test.ts', 'scripts/**/*.test.ts', 'tests/**/*.test.ts'],
    environment: 'node',
    pool: 'forks',
    // Software WebGPU runs at CPU speed and uses both cores: keep files from competing.
    maxWorkers: 2,
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
