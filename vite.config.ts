import { defineConfig } from 'vitest/config';

// One config for the lab (vite) and its tests (vitest).
export default defineConfig({
  server: { host: '127.0.0.1', port: 5173 },
  worker: { format: 'es' },
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
