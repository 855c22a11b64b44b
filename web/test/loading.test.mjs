// Progress and cancelling: a slow model download shows the progress bar, and a long
// classification can be cancelled, which ends the engine worker; the next request starts a new
// one with the same model.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { cardPredictions, dataset, distDir, launch, newPage, pageServer, screenshot, waitReady } from './helpers.mjs';

describe('loading', () => {
  let server;
  let browser;
  let page;
  before(async () => {
    server = await pageServer();
    browser = await launch();
    page = await newPage(browser.context);
  });
  after(async () => {
    await browser?.close();
    await server?.close();
  });

  test('a slow model download shows its progress', async () => {
    const model = fs.readFileSync(path.join(distDir, 'models', 'default.tagnet'));
    let release;
    const held = new Promise((resolve) => { release = resolve; });
    await page.route('**/models/default.tagnet', async (route) => {
      await held;
      await route.fulfill({ status: 200, body: model, contentType: 'application/octet-stream' });
    });
    await page.goto(server.url, { waitUntil: 'domcontentloaded' });
    const loading = page.locator('#loading.active');
    await loading.waitFor();
    assert.match(await page.textContent('#loading-text'), /Starting the engine|Loading the model/);
    assert.equal(await page.locator('#loading progress').count(), 1);
    assert.equal(await page.isDisabled('#classify-pick'), true);
    await screenshot(page, '00-loading');
    release();
    await waitReady(page);
    assert.equal(await page.locator('#loading.active').count(), 0);
    await page.unroute('**/models/default.tagnet');
  });

  test('a long classification can be cancelled; the next one starts a new worker', async () => {
    // The page's classify requests are held before they reach the worker while the test says
    // so: the classification cannot end before Cancel is clicked, however fast the engine is.
    await page.addInitScript(() => {
      const Real = window.Worker;
      window.Worker = class extends Real {
        postMessage(message, transfer) {
          if (window.holdClassify && message?.request?.type === 'classify') return;
          super.postMessage(message, transfer);
        }
      };
    });
    await page.goto(server.url, { waitUntil: 'domcontentloaded' });
    await waitReady(page);
    await page.evaluate(() => { window.holdClassify = true; });
    const files = fs.readdirSync(dataset).sort().flatMap((d) =>
      fs.readdirSync(path.join(dataset, d)).sort().slice(0, 5).map((f) => path.join(dataset, d, f)));
    await page.setInputFiles('#classify-files', files);
    const cancel = page.locator('#loading-cancel');
    await cancel.waitFor({ state: 'visible' });
    await screenshot(page, '11-classifying-many', { fullPage: false });
    await cancel.click();
    await page.waitForFunction(() => !document.getElementById('loading').classList.contains('active'));
    await page.evaluate(() => { window.holdClassify = false; });
    // The cancelled pictures are gone and no error is shown for them.
    assert.equal(await page.locator('#results .card').count(), 0);
    assert.equal(await page.locator('.message.error').count(), 0);
    await page.click('.example-button[data-file="blue_shirt_01.jpg"]');
    assert.deepEqual(await cardPredictions(page, 'blue_shirt_01.jpg'), ['blue', 'shirt']);
    assert.deepEqual(page.problems, []);
  });
});
