// Teaching cards: a fresh page offers no label and ticks nothing; a picture added to a card (file
// chooser, drop, paste) gets that card's label and nothing else, also after a reload; with
// several labels per picture the labels are chosen on the picture itself; cards are renamed and
// removed; a state kept by the page's old layout still loads; on a phone a card shows several
// pictures per row.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { before, describe, test } from 'node:test';

import {
  addCard, addToCard, card, datasetPictures, screenshot, teachingApp, teachingPictures, unlabelledControls, waitReady,
} from './helpers.mjs';

async function reload(page) {
  await page.reload({ waitUntil: 'domcontentloaded' });
  await waitReady(page);
}

/** Drops picture files on an element, as a file manager would. */
async function drop(page, selector, files) {
  const data = files.map((f) => [[...fs.readFileSync(f)], f.split('/').pop()]);
  const transfer = await page.evaluateHandle((items) => {
    const dt = new DataTransfer();
    for (const [bytes, name] of items) dt.items.add(new File([new Uint8Array(bytes)], name, { type: 'image/jpeg' }));
    return dt;
  }, data);
  await page.dispatchEvent(selector, 'dragover', { dataTransfer: transfer });
  await page.dispatchEvent(selector, 'drop', { dataTransfer: transfer });
}

/** Pastes a picture file while `selector` has focus. */
async function paste(page, selector, file, name) {
  await page.focus(selector);
  await page.evaluate(([bytes, n]) => {
    const dt = new DataTransfer();
    dt.items.add(new File([new Uint8Array(bytes)], n, { type: 'image/jpeg' }));
    document.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true }));
  }, [[...fs.readFileSync(file)], name]);
}

describe('teach', () => {
  const app = teachingApp();
  let page;
  before(() => { page = app.page; });

  test('a fresh page offers no label of its own and ticks nothing', async () => {
    assert.equal(await page.locator('#cards [data-card]').count(), 0);
    assert.equal(await page.locator('.message').count(), 0);
    assert.equal(await page.locator('#teach input[type="checkbox"]:checked').count(), 1);   // augmentation only
    assert.equal(await page.isDisabled('#train'), true);
    assert.match(await page.textContent('#train-hint'), /add at least two labels/);
    // Training settings wait, folded, under Advanced.
    assert.equal(await page.$eval('#train-settings', (d) => d.open), false);
    await screenshot(page, '20-teach-empty');
  });

  test('a picture added to a card gets that card\'s label only, also after a reload', async () => {
    await addCard(page, 'coat');
    await addToCard(page, 'coat', datasetPictures('black_jeans', 4));
    await addCard(page, 'pullover');
    await drop(page, `${card('pullover')} .card-drop`, datasetPictures('red_shirt', 3));
    await page.waitForFunction((sel) => document.querySelectorAll(sel).length === 3, `${card('pullover')} .thumb`);
    await paste(page, `${card('pullover')} .card-drop`, datasetPictures('blue_shirt', 1)[0], 'pasted.jpg');
    await page.waitForFunction((sel) => document.querySelectorAll(sel).length === 4, `${card('pullover')} .thumb`);
    // Pictures added to the first card after the second exists still get the first card's label only.
    await addToCard(page, 'coat', datasetPictures('blue_jeans', 2));

    const check = async () => {
      const all = await teachingPictures(page);
      assert.equal(all.length, 10);
      for (const [label, name, labels] of all) assert.deepEqual(labels, [label], `${name} in ${label}: ${labels}`);
      assert.equal(await page.textContent(`${card('coat')} .card-count`), '6 pictures');
      assert.equal(await page.textContent(`${card('pullover')} .card-count`), '4 pictures');
    };
    await check();
    assert.equal(await page.isDisabled('#train'), false);
    await screenshot(page, '21-teach-cards');
    await reload(page);
    await check();
    assert.deepEqual(await page.$$eval('#cards [data-card]', (els) => els.map((e) => e.dataset.label)), ['coat', 'pullover']);
  });

  test('several labels per picture: the labels are chosen on the picture', async () => {
    await page.check('input[name="mode"][value="multi"]');
    assert.deepEqual(await unlabelledControls(page), []);
    // Switching adds no label to any picture.
    for (const [label, , labels] of await teachingPictures(page)) assert.deepEqual(labels, [label]);
    const first = `${card('coat')} .thumb >> nth=0`;
    const id = await page.locator(first).getAttribute('data-id');
    const picture = `${card('coat')} .thumb[data-id="${id}"]`;
    await page.locator(picture).locator('.label-toggle[data-label="pullover"]').click();
    const labelsOf = () => page.locator(picture).getAttribute('data-labels');
    assert.equal(await labelsOf(), 'coat,pullover');
    assert.equal(await page.locator(`${card('coat')} .label-toggle[aria-pressed="true"]`).count(), 1);
    await screenshot(page, '22-teach-multi');
    await reload(page);
    assert.equal(await labelsOf(), 'coat,pullover');
    // One label per picture: each picture has its card's label; the choice comes back with several.
    await page.check('input[name="mode"][value="single"]');
    assert.equal(await labelsOf(), 'coat');
    assert.equal(await page.locator('.label-toggle').count(), 0);
    await page.check('input[name="mode"][value="multi"]');
    assert.equal(await labelsOf(), 'coat,pullover');
    await page.locator(`${picture} .label-toggle`).click();
    assert.equal(await labelsOf(), 'coat');
    await page.check('input[name="mode"][value="single"]');
  });

  test('cards are renamed and removed; pictures are removed one by one', async () => {
    await page.fill(`${card('coat')} input.card-name`, 'pullover');
    await page.press(`${card('coat')} input.card-name`, 'Enter');
    await page.locator('.message.error', { hasText: 'There is already a label "pullover"' }).waitFor();
    assert.equal(await page.inputValue(`${card('coat')} input.card-name`), 'coat');
    await page.fill(`${card('coat')} input.card-name`, 'jacket');
    await page.press(`${card('coat')} input.card-name`, 'Enter');
    await page.locator(card('jacket')).waitFor();
    // A name that works clears the complaint about the one that did not.
    assert.equal(await page.locator('.message.error').count(), 0);
    for (const [label, , labels] of await teachingPictures(page)) assert.deepEqual(labels, [label]);

    await page.locator(`${card('jacket')} .thumb >> nth=0`).locator('.thumb-remove').click();
    await page.locator(`${card('jacket')} .card-count`, { hasText: '5 pictures' }).waitFor();
    await addCard(page, 'spare');
    await page.click(`${card('spare')} .remove-card`);
    await page.locator(card('spare')).waitFor({ state: 'detached' });
    await reload(page);
    assert.deepEqual(await page.$$eval('#cards [data-card]', (els) => els.map((e) => e.dataset.label)), ['jacket', 'pullover']);
    assert.equal(await page.textContent(`${card('jacket')} .card-count`), '5 pictures');
  });

  test('a phone shows several pictures per row', async () => {
    await addToCard(page, 'jacket', datasetPictures('black_jeans', 10, 10));
    await page.setViewportSize({ width: 390, height: 844 });
    const tops = await page.$$eval(`${card('jacket')} .thumb`, (els) => els.map((e) => Math.round(e.getBoundingClientRect().top)));
    const perRow = tops.filter((t) => t === tops[0]).length;
    assert.ok(perRow >= 4, `${perRow} pictures per row at 390 pixels`);
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 390, `the page is ${width} pixels wide on a 390-pixel phone`);
    await page.setViewportSize({ width: 1280, height: 800 });
    await screenshot(page, '23-teach-many');
  });

  test('a state kept by the old layout loads, sorted into cards', async () => {
    // The old layout: a list of label names (the model's, ticked for every picture) and each
    // picture's names.
    const jpeg = [...fs.readFileSync(datasetPictures('red_shirt', 1)[0])];
    await page.evaluate(async (bytes) => {
      const db = await new Promise((resolve, reject) => {
        const r = indexedDB.open('tagnet', 1);
        r.onsuccess = () => resolve(r.result);
        r.onerror = () => reject(r.error);
      });
      const tx = db.transaction(['settings', 'examples'], 'readwrite');
      const blob = new Blob([new Uint8Array(bytes)], { type: 'image/jpeg' });
      tx.objectStore('settings').put({ mode: 'multi', labels: ['black', 'blue', 'trousers'], part: 'head', epochs: 10,
                                       lr: 0.001, batchSize: 16, augment: true, threshold: null }, 'teach');
      tx.objectStore('examples').clear();
      tx.objectStore('examples').put({ id: 1, blob, name: 'old-1.jpg', labels: ['black', 'trousers'], addedAt: 1 });
      tx.objectStore('examples').put({ id: 2, blob, name: 'old-2.jpg', labels: ['trousers'], addedAt: 2 });
      tx.objectStore('examples').put({ id: 3, blob, name: 'old-3.jpg', labels: [], addedAt: 3 });
      await new Promise((resolve) => { tx.oncomplete = resolve; });
      db.close();
    }, jpeg);
    await reload(page);
    await page.locator('.message.info', { hasText: 'earlier version' }).waitFor();
    const all = await teachingPictures(page);
    assert.deepEqual(all.map(([label, name, labels]) => [name, label, labels.join('+')]).sort(), [
      ['old-1.jpg', 'trousers', 'black+trousers'],
      ['old-2.jpg', 'trousers', 'trousers'],
      ['old-3.jpg', '', ''],
    ]);
    assert.equal(await page.$eval('input[name="mode"][value="multi"]', (el) => el.checked), true);
    await screenshot(page, '24-teach-migrated');
    assert.deepEqual(page.problems, []);
  });
});
