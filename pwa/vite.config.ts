// Build of the PWA the helper serves (run from the repository root:
// `vite build --config pwa/vite.config.ts`). Output goes to dist/pwa next to the helper's build.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';
import { VitePWA } from 'vite-plugin-pwa';

const root = fileURLToPath(new URL('.', import.meta.url));
const outDir = fileURLToPath(new URL('../dist/pwa', import.meta.url));

export default defineConfig({
  root,
  base: '/',
  publicDir: 'public',
  build: {
    outDir,
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
  },
  plugins: [
    VitePWA({
      strategies: 'generateSW',
      // We register with workbox-window in src/sw-register.ts to offer an "update ready" prompt.
      injectRegister: false,
      registerType: 'prompt',
      filename: 'sw.js',
      manifestFilename: 'manifest.webmanifest',
      // The glob below already precaches the icons; listing them twice only bloats sw.js.
      includeManifestIcons: false,
      manifest: {
        id: '/',
        name: 'LANrage',
        short_name: 'LANrage',
        description: 'Your virtual LAN for gaming with friends: helper status, metrics and settings.',
        start_url: '/',
        scope: '/',
        display: 'standalone',
        theme_color: '#11141b',
        background_color: '#0d0f14',
        icons: [
          { src: '/icons/icon-192.png', sizes: '192x192', type: 'image/png', purpose: 'any' },
          { src: '/icons/icon-512.png', sizes: '512x512', type: 'image/png', purpose: 'any' },
          { src: '/icons/maskable-512.png', sizes: '512x512', type: 'image/png', purpose: 'maskable' },
        ],
      },
      workbox: {
        // The plugin adds the manifest itself; the glob picks up everything else, icons included.
        globPatterns: ['**/*.{html,js,css,png,svg}'],
        // Source maps are for debugging, not for offline use.
        globIgnores: ['**/*.map'],
        navigateFallback: '/index.html',
        navigateFallbackDenylist: [/^\/api\//, /^\/lanrage\./],
        // No runtimeCaching on purpose. gRPC-Web calls (POST, the live stream among them) and
        // /api/* (the session token) match no route, so the worker lets them go to the network
        // untouched and nothing caches them. A NetworkOnly route would not cache either, but it
        // would proxy the endless Watch stream through the worker, and Chromium never activates
        // a waiting update while the active worker has a response in flight: updates would stall
        // (measured; test/browser/pwa.test.ts checks both the update and the empty caches).
        cleanupOutdatedCaches: true,
        sourcemap: false,
        clientsClaim: true,
        // skipWaiting stays off: a waiting worker is announced and the user decides when to reload.
        skipWaiting: false,
      },
    }),
  ],
});
