// The WebAssembly engine's speed in headless Chromium, as the page runs it (in a Web Worker,
// crossOriginIsolated, 2 engine threads): SmallerVGGNet 96x96x3 with its full 8.7M parameters
// (tagnet.createModel('smallervggnet')): classify latency at batch 1, classify and training
// throughput at batch 32, for each module variant. Also the gzip -9 size of everything the page
// downloads on a first visit, and how soon a first visit classifies.
//
//   node web/bench.mjs [--json] [--seconds 3] [--threads 2] [--variant simd --variant simd-threads]
//
// Needs web/dist (web/run-tests.sh or `npm run build` in web/), which it serves on 127.0.0.1
// with the COOP/COEP headers.
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import zlib from 'node:zlib';

import { distDir, launch, newPage, waitReady } from './test/helpers.mjs';
import { startStaticServer } from './test/static-server.mjs';

const { values: args } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    seconds: { type: 'string', default: '3' },
    threads: { type: 'string', default: '2' },
    variant: { type: 'string', multiple: true },
  },
});

// Measured on the same kind of machine (2 cores, Zen 3) in the same headless Chromium with 2
// threads.
const PEERS = {
  'ONNX Runtime Web 1.30 (wasm)': { classify_b1_ms: 7.4, classify_b32_images_per_s: 155 },
  'TF.js 4.22 wasm (XNNPACK)': { classify_b1_ms: 10.4, classify_b32_images_per_s: 131 },
};

const gzip = (file) => zlib.gzipSync(fs.readFileSync(file), { level: 9 }).length;

async function pagePayload(browser, server) {
  // A first visit: what the page and its workers fetch until it can classify, and what its
  // service worker stores besides for offline use.
  const own = new Set();
  const onRequest = (r) => {
    if (!r.serviceWorker()) own.add(new URL(r.url()).pathname);
  };
  browser.context.on('request', onRequest);
  server.log.length = 0;
  const page = await newPage(browser.context);
  await page.goto(server.url, { waitUntil: 'domcontentloaded' });
  await waitReady(page);
  await page.waitForFunction(() => document.body.dataset.offline === 'true');
  browser.context.off('request', onRequest);
  const files = new Map();
  for (const e of server.log) {
    if (e.status !== 200) continue;
    const rel = e.path === '/' || e.path === '/index.html' ? 'index.html' : e.path.replace(/^\//, '');
    if (files.has(rel)) continue;
    const full = path.join(distDir, rel);
    const byPage = own.has(e.path) || (rel === 'index.html' && own.has('/'));
    files.set(rel, { file: rel, bytes: fs.statSync(full).size, gzip9: gzip(full), page: byPage });
  }
  await page.close();
  const list = [...files.values()].sort((a, b) => b.gzip9 - a.gzip9);
  const sum = (f) => list.filter(f).reduce((s, x) => s + x.gzip9, 0);
  return {
    files: list,
    page_gzip9: sum((f) => f.page),
    page_code_gzip9: sum((f) => f.page && /\.(m?js|wasm|css|html)$/.test(f.file)),
    model_gzip9: sum((f) => f.file.endsWith('.tagnet')),
    offline_total_gzip9: sum(() => true),
  };
}

// A first visit with a fresh profile, an example clicked as soon as it shows: ms from the
// navigation until its probabilities are on the page, and where the time went.
async function firstClassification(server) {
  const fresh = await launch();
  try {
    const page = await newPage(fresh.context);
    await page.goto(server.url, { waitUntil: 'commit' });
    await page.click('.example-button');
    await page.waitForFunction(() => window.tagnetPage?.timings.firstClassification !== undefined,
                               null, { timeout: 60_000 });
    return await page.evaluate(() => window.tagnetPage.timings);
  } finally {
    await fresh.close();
  }
}

async function main() {
  const ownServer = await startStaticServer({ root: distDir, isolate: true });
  const browser = await launch();
  try {
    const page = await newPage(browser.context);
    await page.goto(new URL('bench.html', ownServer.url).href, { waitUntil: 'load' });
    const isolated = await page.evaluate(() => crossOriginIsolated);
    if (!isolated) throw new Error('the bench page is not crossOriginIsolated');
    const options = {
      seconds: Number(args.seconds),
      threads: Number(args.threads),
      variants: args.variant ?? ['simd', 'simd-threads'],
      architecture: 'smallervggnet',
    };
    page.setDefaultTimeout(0);
    const report = await page.evaluate((o) => window.runBench(o), options);
    await page.close();
    report.browser = browser.context.browser()?.version() ?? null;
    report.page = await pagePayload(browser, ownServer);
    report.first_visit = await firstClassification(ownServer);
    report.peers = PEERS;
    if (args.json) {
      console.log(JSON.stringify(report, null, 1));
      return;
    }
    console.log(`tagnet in headless Chromium: ${report.network}, crossOriginIsolated ${report.crossOriginIsolated}`);
    for (const [variant, r] of Object.entries(report.variants)) {
      console.log(`\n${variant} (${r.engine}, ${r.params.toLocaleString('en-US')} parameters)`);
      console.log(`  classify, batch 1:   ${r.classify_b1_ms.toFixed(1).padStart(8)} ms`);
      console.log(`  classify, batch 32:  ${r.classify_b32_images_per_s.toFixed(1).padStart(8)} images/s`);
      console.log(`  training, batch 32:  ${r.train_b32_images_per_s.toFixed(1).padStart(8)} images/s` +
                  ` (${r.train_b32_step_ms.toFixed(0)} ms per batch)`);
    }
    console.log('\npeers, same machine and browser, 2 threads (inference only):');
    for (const [name, p] of Object.entries(PEERS)) {
      console.log(`  ${name.padEnd(30)} batch 1 ${p.classify_b1_ms.toFixed(1)} ms, batch 32 ${p.classify_b32_images_per_s} images/s`);
    }
    const fv = report.first_visit;
    console.log(`\nfirst visit: engine ready ${fv.engineReady.toFixed(0)} ms, model ready ${fv.modelReady.toFixed(0)} ms, ` +
                `first classification ${fv.firstClassification.toFixed(0)} ms after navigation`);
    const kb = (n) => `${(n / 1024).toFixed(0)} KB`;
    const p = report.page;
    console.log(`\nthe page's first visit, gzip -9: ${kb(p.page_gzip9)} fetched by the page until it classifies ` +
                `(code ${kb(p.page_code_gzip9)}, model ${kb(p.model_gzip9)}); ` +
                `${kb(p.offline_total_gzip9)} with what the service worker stores for offline use (*)`);
    for (const f of p.files) {
      console.log(`  ${(f.page ? '' : '* ') + f.file}`.padEnd(46) + `${kb(f.bytes).padStart(8)} -> ${kb(f.gzip9).padStart(7)}`);
    }
  } finally {
    await browser.close();
    await ownServer.close();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
