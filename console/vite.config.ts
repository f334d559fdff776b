// The operator and merchant console: a single-page app built at build time into console/dist and
// served by the API process under /console. Everything it loads is in the bundle (no CDN, no web
// fonts); asset names carry their content hash, so they can be cached for good.
import { fileURLToPath } from 'node:url';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

const root = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root,
  base: '/console/',
  plugins: [react()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    assetsDir: 'assets',
    // antd is one large library: one vendor chunk beside the app's own code.
    chunkSizeWarningLimit: 2000,
    rolldownOptions: {
      output: {
        codeSplitting: { groups: [{ name: 'vendor', test: /node_modules/ }] },
      },
    },
  },
  server: {
    // `npm run console:dev`: the API (npm start) answers /console/api.
    proxy: { '/console/api': process.env.DURAPAY_API_URL ?? 'http://127.0.0.1:3000' },
  },
});
