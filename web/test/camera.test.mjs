// The camera, with Chromium's fake device: live in Classify, the bars updating frame after frame
// beside the preview (and a frame kept as a result that nothing hides); in a teaching card,
// pictures added while the record button is held; and without getUserMedia, camera buttons that
// say why they do nothing.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';

import {
  addCard, card, defaultModelLabels, launch, newPage, openApp, pageServer, screenshot, teachingApp, teachingPictures,
} from './helpers.mjs';

const frames = (page) => page.$eval('#live', (el) => Number(el.dataset.frames ?? 0));

describe('camera', () => {
  const app = teachingApp();
  let page;
  before(() => { page = app.page; });

  test('live in Classify: the bars follow the camera until it stops', async () => {
    await page.click('#classify-camera');
    await page.waitForFunction(() => Number(document.getElementById('live').dataset.frames ?? 0) >= 1, null,
                               { timeout: 15_000 });
    const first = await frames(page);
    await page.waitForFunction((n) => Number(document.getElementById('live').dataset.frames) >= n, first + 2,
                               { timeout: 15_000 });
    assert.equal(await page.locator('#live-probs .prob').count(), defaultModelLabels().length);
    assert.equal(await page.getAttribute('#classify-camera', 'aria-expanded'), 'true');
    await screenshot(page, '30-live-camera');

    // A frame kept as a result shows among the results, in view of the page.
    await page.click('#live-snapshot');
    const result = page.locator('#results .card[data-name="camera-1.png"]');
    await result.locator('.probs').waitFor();
    assert.equal(await result.locator('.prob').count(), defaultModelLabels().length);
    await result.scrollIntoViewIfNeeded();
    assert.equal(await result.isVisible(), true);

    await page.click('#live-stop');
    assert.equal(await page.isVisible('#live'), false);
    const stopped = await frames(page);
    await page.waitForTimeout(600);
    assert.ok(await frames(page) <= stopped + 1, 'classification went on after the camera stopped');
  });

  test('in a teaching card, holding the record button adds pictures to that card only', async () => {
    await addCard(page, 'wave');
    await addCard(page, 'still');
    await page.click(`${card('wave')} .card-camera`);
    await page.waitForFunction((sel) => {
      const v = document.querySelector(sel);
      return v && v.readyState >= 2 && v.videoWidth > 0;
    }, `${card('wave')} .recorder video`, { timeout: 15_000 });
    const hold = page.locator(`${card('wave')} .hold`);
    await hold.hover();
    await page.mouse.down();
    await page.waitForFunction((sel) => document.querySelectorAll(sel).length >= 4, `${card('wave')} .thumb`,
                               { timeout: 15_000 });
    await screenshot(page, '31-recording', { fullPage: false });
    await page.mouse.up();
    await page.waitForTimeout(500);
    const held = await page.locator(`${card('wave')} .thumb`).count();
    await page.waitForTimeout(600);
    assert.equal(await page.locator(`${card('wave')} .thumb`).count(), held, 'pictures were added after the release');
    for (const [label, name, labels] of await teachingPictures(page)) assert.deepEqual(labels, [label], name);
    assert.equal(await page.locator(`${card('still')} .thumb`).count(), 0);
    await page.click(`${card('wave')} .close-camera`);
    assert.equal(await page.isVisible(`${card('wave')} .recorder`), false);
    assert.deepEqual(page.problems, []);
  });
});

describe('no camera', () => {
  test('without getUserMedia the camera buttons are off and say why', async () => {
    const server = await pageServer();
    const browser = await launch();
    try {
      const page = await newPage(browser.context);
      await page.addInitScript(() => {
        Object.defineProperty(Navigator.prototype, 'mediaDevices', { get: () => undefined, configurable: true });
      });
      await openApp(page, server.url);
      assert.equal(await page.isDisabled('#classify-camera'), true);
      assert.match(await page.textContent('#camera-note'), /^No camera: /);
      await addCard(page, 'nothing');
      assert.equal(await page.isDisabled(`${card('nothing')} .card-camera`), true);
      assert.match(await page.getAttribute(`${card('nothing')} .card-camera`, 'title'), /^No camera: /);
      await screenshot(page, '32-no-camera');
    } finally {
      await browser.close();
      await server.close();
    }
  });
});
