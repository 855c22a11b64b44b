// Offline: once the service worker has cached the page, cutting the network and reloading
// still gives a working page, every file answered by the service worker.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { cardPredictions, launch, newPage, openApp, pageServer, screenshot, waitReady } from './helpers.mjs';

describe('offline', () => {
  let server;
  let browser;
  let page;
  before(async () => {
    server = await pageServer();
    browser = await launch();
    page = await newPage(browser.context);
  });
  after(async () => {
    await browser?.context.setOffline(false);
    await browser?.close();
    await server?.close();
  });

  test('the page works after the network is cut', async (t) => {
    await openApp(page, server.url);
    await page.waitForFunction(() => document.body.dataset.offline === 'true', null, { timeout: 30_000 });
    assert.match(await page.textContent('#offline-status'), /Works offline/);
    const version = await page.evaluate(() => new Promise((resolve) => {
      navigator.serviceWorker.addEventListener('message', (e) => resolve(e.data), { once: true });
      navigator.serviceWorker.controller.postMessage('version');
    }));
    t.diagnostic(`service worker cache ${version.cache}`);

    await browser.context.setOffline(true);
    const network = [];
    page.on('response', (r) => { if (!r.fromServiceWorker()) network.push(r.url()); });
    // A request cut short by the reload itself (net::ERR_ABORTED) did not reach the network.
    page.on('requestfailed', (r) => {
      const reason = r.failure()?.errorText;
      if (reason !== 'net::ERR_ABORTED') network.push(`failed: ${r.url()} (${reason})`);
    });
    await page.reload({ waitUntil: 'domcontentloaded' });
    await waitReady(page);
    assert.equal(await page.evaluate(() => navigator.onLine), false);
    await page.click('.example-button[data-file="blue_shirt_01.jpg"]');
    assert.deepEqual(await cardPredictions(page, 'blue_shirt_01.jpg'), ['blue', 'shirt']);
    // Threads still run: the service worker's answers carry the isolation headers.
    assert.equal(await page.evaluate(() => crossOriginIsolated), true);
    assert.equal(await page.evaluate(() => window.tagnetPage.engine.variant), 'simd-threads');
    assert.deepEqual(network.filter((u) => !u.startsWith('data:') && !u.startsWith('blob:')), []);
    await screenshot(page, '07-offline');
    assert.deepEqual(page.problems.filter((p) => !/net::ERR_INTERNET_DISCONNECTED/.test(p)), []);
  });
});
