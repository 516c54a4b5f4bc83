import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  esbuild: { jsx: 'automatic' },
  resolve: {
    // one react-query for the tests and the Perses packages, which Node loads as CommonJS (two
    // builds of it would be two contexts)
    alias: {
      '@tanstack/react-query': fileURLToPath(
        new URL('./node_modules/@tanstack/react-query/build/lib/index.js', import.meta.url)
      ),
    },
  },
  test: {
    environment: 'jsdom',
    globals: true,
    setupFiles: ['./src/test-setup.ts'],
    include: ['src/**/*.test.{ts,tsx}'],
    css: false,
  },
});
