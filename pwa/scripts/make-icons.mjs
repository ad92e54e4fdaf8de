// Renders the app icons from one SVG with headless Chromium, so the PNGs in public/icons can be
// remade after a design change: `node pwa/scripts/make-icons.mjs` from the repository root.
// PNGs (not only SVG) because Chromium's installability check wants 192 and 512 raster icons.
import { writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const outDir = fileURLToPath(new URL('../public/icons/', import.meta.url));
const executablePath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/**
 * Three machines on one LAN: nodes joined by links. `maskable` draws a full-bleed background and
 * keeps the glyph inside the 80% safe circle that launchers may crop to.
 */
function iconSvg({ maskable }) {
  const scale = maskable ? 0.62 : 0.86;
  const offset = (512 - 512 * scale) / 2;
  const bg = maskable
    ? '<rect width="512" height="512" fill="url(#bg)"/>'
    : '<rect x="8" y="8" width="496" height="496" rx="112" fill="url(#bg)"/>';
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 512 512" width="512" height="512">
  <defs>
    <linearGradient id="bg" x1="0" y1="0" x2="1" y2="1">
      <stop offset="0" stop-color="#1d2230"/><stop offset="1" stop-color="#0d0f14"/>
    </linearGradient>
    <linearGradient id="accent" x1="0" y1="0" x2="1" y2="1">
      <stop offset="0" stop-color="#ff5a6e"/><stop offset="1" stop-color="#ff9f43"/>
    </linearGradient>
  </defs>
  ${bg}
  <g transform="translate(${offset} ${offset}) scale(${scale})">
    <g stroke="url(#accent)" stroke-width="30" stroke-linecap="round" fill="none">
      <path d="M256 146 L130 366 M256 146 L382 366 M130 366 L382 366"/>
    </g>
    <g fill="#0d0f14" stroke="url(#accent)" stroke-width="26">
      <circle cx="256" cy="146" r="60"/><circle cx="130" cy="366" r="60"/><circle cx="382" cy="366" r="60"/>
    </g>
    <g fill="url(#accent)">
      <circle cx="256" cy="146" r="22"/><circle cx="130" cy="366" r="22"/><circle cx="382" cy="366" r="22"/>
    </g>
  </g>
</svg>`;
}

if (!existsSync(executablePath)) {
  console.error(`Chromium not found at ${executablePath}; set CHROMIUM_PATH.`);
  process.exit(1);
}
const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run'],
});
try {
  const page = await browser.newPage({ viewport: { width: 512, height: 512 } });
  const targets = [
    { file: 'icon-192.png', size: 192, maskable: false },
    { file: 'icon-512.png', size: 512, maskable: false },
    { file: 'maskable-512.png', size: 512, maskable: true },
  ];
  for (const { file, size, maskable } of targets) {
    await page.setViewportSize({ width: size, height: size });
    const svg = iconSvg({ maskable }).replace('width="512" height="512"', `width="${size}" height="${size}"`);
    await page.setContent(`<html><body style="margin:0;background:transparent">${svg}</body></html>`);
    const png = await page.screenshot({ omitBackground: true, clip: { x: 0, y: 0, width: size, height: size } });
    await writeFile(outDir + file, png);
    console.log(`wrote ${file} (${png.length} bytes)`);
  }
  await writeFile(outDir + 'icon.svg', iconSvg({ maskable: false }) + '\n');
  console.log('wrote icon.svg');
} finally {
  await browser.close();
}
