import { defineConfig } from 'vitest/config';

// One config for the lab (vite) and its tests (vitest).
export default defineConfig({
  server: { host: '127.0.0.1', port: 5173 },
  worker: { format: 'es' },
  // The benchmark's peers (bench/peers/, loaded on demand): pre-bundled at start, so that their first
  // import in a page does not trigger a re-optimisation (and a reload) mid-session.
  optimizeDeps: { include: ['@jax-js/jax', '@tensorflow/tfjs-core', '@tensorflow/tfjs-backend-webgpu'] },
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
