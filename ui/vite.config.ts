import { svelte } from '@sveltejs/vite-plugin-svelte';
import { defineConfig } from 'vite';

// Everything the page needs is bundled into dist/ (no CDN, no web fonts): a registry is often run
// where the browser reaches nothing else. Hashed names under /assets/ let registry-api cache them
// for a year; index.html is the only file served fresh.
export default defineConfig({
  plugins: [svelte()],
  base: '/',
  build: {
    outDir: 'dist',
    assetsDir: 'assets',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
    reportCompressedSize: false,
  },
});
