// Threads: served with COOP/COEP (`tagnet serve`) the page is crossOriginIsolated at once and
// runs the SIMD + threads build; on a static host without those headers its service worker
// isolates it after one reload; with no service worker either, the SIMD build runs alone and
// the page says why.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';

import { distDir, launch, newPage, openApp, pageServer, screenshot, waitReady } from './helpers.mjs';
import { startStaticServer } from './static-server.mjs';

describe('cross-origin isolation', () => {
  const cleanups = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  test('served with the headers: isolated at once, the threaded build runs', async (t) => {
    const server = await pageServer();
    cleanups.push(() => server.close());
    const browser = await launch();
    cleanups.push(() => browser.close());
    const page = await newPage(browser.context);
    const response = await page.goto(server.url, { waitUntil: 'domcontentloaded' });
    const headers = response.headers();
    assert.equal(headers['cross-origin-opener-policy'], 'same-origin');
    assert.equal(headers['cross-origin-embedder-policy'], 'require-corp');
    await waitReady(page);
    assert.equal(await page.evaluate(() => crossOriginIsolated), true);
    const engine = await page.evaluate(() => window.tagnetPage.engine);
    t.diagnostic(`${engine.variant}: ${engine.engine}, started in ${engine.startMs.toFixed(0)} ms`);
    assert.equal(engine.variant, 'simd-threads');
    assert.equal(engine.threads, 2);
    assert.equal(engine.crossOriginIsolated, true);
    assert.match(engine.engine, /2 threads/);
    assert.match(await page.textContent('#engine-status'), /SIMD with 2 threads/);
    // The page's own files carry the headers too (the workers need COEP).
    for (const file of ['wasm/tagnet-simd-threads.wasm', 'wasm/tagnet-simd-threads.worker.js', 'sw.js']) {
      const r = await fetch(new URL(file, server.url));
      assert.equal(r.status, 200, file);
      assert.equal(r.headers.get('cross-origin-embedder-policy'), 'require-corp', file);
    }
    assert.equal((await fetch(new URL('wasm/tagnet-simd.wasm', server.url))).headers.get('content-type'), 'application/wasm');
    assert.deepEqual(page.problems, []);
  });

  test('a static host without the headers: the service worker isolates the page', async () => {
    const plain = await startStaticServer({ root: distDir, isolate: false });
    cleanups.push(() => plain.close());
    const browser = await launch();
    cleanups.push(() => browser.close());
    const page = await newPage(browser.context);
    const first = await page.goto(plain.url, { waitUntil: 'domcontentloaded' });
    assert.equal(first.headers()['cross-origin-opener-policy'], undefined);
    // The page reloads itself once the service worker controls it.
    await page.waitForFunction(() => document.body.dataset.ready === 'true', null, { timeout: 60_000 });
    assert.equal(await page.evaluate(() => crossOriginIsolated), true);
    assert.equal(await page.evaluate(() => window.tagnetPage.engine.variant), 'simd-threads');
    const navigations = plain.log.filter((e) => e.path === '/index.html').length;
    assert.ok(navigations >= 1);
    await screenshot(page, '08-isolated-by-service-worker');
    assert.deepEqual(page.problems, []);
  });

  test('no headers and no service workers: the SIMD build runs and the page says so', async () => {
    const plain = await startStaticServer({ root: distDir, isolate: false });
    cleanups.push(() => plain.close());
    const browser = await launch();
    cleanups.push(() => browser.close());
    const page = await newPage(browser.context);
    // A browser without service workers (some private modes, or switched off).
    await page.addInitScript(() => { delete Navigator.prototype.serviceWorker; });
    await openApp(page, plain.url);
    assert.equal(await page.evaluate(() => crossOriginIsolated), false);
    assert.equal(await page.evaluate(() => window.tagnetPage.engine.variant), 'simd');
    assert.match(await page.textContent('#engine-status'), /one thread.*cross-origin isolated/s);
    await page.click('.example-button[data-file="red_dress_01.jpg"]');
    await page.locator('#results .card[data-name="red_dress_01.jpg"][data-predicted]').waitFor();
    assert.match(await page.textContent('#offline-status'), /not available/);
    await screenshot(page, '09-simd-only');
    assert.deepEqual(page.problems, []);
  });
});
