// Fine-tuning in the page: two new labels, one card each, 60 pictures, the head and the last
// convolution block trained for 10 epochs with augmentation (timed), the "What trains" count equal
// to the run's, the chart and the before/after table (a few pictures of every label), the
// predictions changing, the downloaded model file (checked natively when the CLI is at hand),
// everything still there after a reload; Go back and Use the previous model restoring a model bit
// for bit; stopping a training part-way and keeping it; several labels per picture and the note on
// a label predicted alone that training only saw with others.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { before, describe, test } from 'node:test';

import {
  addCard, addToCard, bundledExamples, card, cardPredictions, datasetPictures as pictures, defaultModelLabels,
  distDir, screenshot, teachingApp, teachingPictures, waitReady,
} from './helpers.mjs';

/** The bytes of the model the page downloads with `button`. */
async function downloaded(page, button = '#download-model') {
  const downloading = page.waitForEvent('download');
  await page.click(button);
  const download = await downloading;
  return fs.readFileSync(await download.path());
}

const defaultModel = () => fs.readFileSync(path.join(distDir, 'models', 'default.tagnet'));
const compareRows = (page) => page.$$eval('#compare-rows tr', (trs) =>
  trs.map((tr) => [...tr.cells].map((c) => c.textContent.trim())));
const modelLabels = (page) => page.$$eval('#model-labels .chip', (els) => els.map((e) => e.textContent));

/** Opens the training settings folded under Advanced. */
async function openAdvanced(page) {
  if (!await page.$eval('#train-settings', (d) => d.open)) await page.click('#advanced-summary');
}

describe('fine-tune', () => {
  const app = teachingApp();
  let page;
  /** The model file, the before/after table and the chart's points of the first training. */
  let trained;
  let tableAfterTraining;
  let chartPoints;
  before(() => { page = app.page; });

  test('teach two new classes from 60 pictures; the predictions change', async (t) => {
    // One card per class, one label per picture (the page's default).
    assert.equal(await page.$eval('input[name="mode"][value="single"]', (el) => el.checked), true);
    await addCard(page, 'trousers');
    await addCard(page, 'top');
    await addToCard(page, 'trousers', [...pictures('blue_jeans', 15), ...pictures('black_jeans', 15)]);
    await addToCard(page, 'top', [...pictures('red_shirt', 10), ...pictures('blue_shirt', 10),
                                  ...pictures('red_dress', 5), ...pictures('blue_dress', 5)]);
    assert.equal(await page.locator('#cards .thumb').count(), 60);

    for (const file of ['blue_jeans_01.jpg', 'red_shirt_01.jpg', 'black_jeans_01.jpg', 'blue_shirt_01.jpg']) {
      await page.click(`.example-button[data-file="${file}"]`);
      await cardPredictions(page, file);
    }
    assert.deepEqual(await cardPredictions(page, 'black_jeans_01.jpg'), ['black', 'jeans']);

    await openAdvanced(page);
    // The counts offered are those of a new head for two labels (128 × 2 + 2 for the head alone),
    // not those of the model's six outputs.
    await page.locator('.hint[data-part="head"]', { hasText: '(258 trainable parameters)' }).waitFor();
    const offered = await page.textContent('.hint[data-part="block"]');
    await page.check('input[name="part"][value="block"]');
    await page.fill('#epochs', '10');
    await page.fill('#batch-size', '16');
    await page.check('#augment');
    await screenshot(page, '04-teach-ready');
    await page.click('#train');
    // Mid-training: the chart is live and the page still answers.
    await page.waitForFunction(() => /Epoch [3-9]\//.test(document.getElementById('train-text').textContent));
    assert.equal(await page.evaluate(() => 1 + 1), 2);
    await screenshot(page, '05-training');
    await page.waitForFunction(() => window.tagnetPage.lastTraining !== null, null, { timeout: 120_000 });
    const training = await page.evaluate(() => window.tagnetPage.lastTraining);
    t.diagnostic(`fine-tuning 60 pictures, 10 epochs, head + last block (${training.trainableParams} parameters), ` +
                 `augmentation: ${(training.elapsedMs / 1000).toFixed(1)} s, ${training.steps} batches`);
    assert.equal(training.stopped, false);
    assert.equal(training.steps, 40);
    // The count offered next to the choice is the count that trained.
    assert.equal(offered, `(${training.trainableParams.toLocaleString('en-US')} trainable parameters)`);

    assert.deepEqual(await modelLabels(page), ['trousers', 'top']);
    // The new model is in use, on trial: it can be kept or undone.
    assert.equal(await page.isVisible('#decision'), true);
    assert.equal(await page.isVisible('#use-previous'), false);
    t.diagnostic(`blue_jeans_01.jpg: ${await cardPredictions(page, 'blue_jeans_01.jpg')}`);
    assert.deepEqual(await cardPredictions(page, 'black_jeans_01.jpg'), ['trousers']);
    assert.deepEqual(await cardPredictions(page, 'red_shirt_01.jpg'), ['top']);
    assert.deepEqual(await cardPredictions(page, 'blue_shirt_01.jpg'), ['top']);
    // The chart drew every batch, and the comparison shows before and after.
    assert.ok(await page.locator('#chart canvas').count() > 0);
    // The table: as many teaching pictures of each label, before and after.
    const rows = await compareRows(page);
    assert.equal(rows.length, 12);
    assert.equal(rows.filter((r) => r[1] === 'trousers').length, 6);
    assert.equal(rows.filter((r) => r[1] === 'top').length, 6);
    for (const [name, taught, before, after] of rows) {
      if (taught === 'trousers') assert.match(before, /jeans/, name);
      assert.match(after, new RegExp(`^${taught} `), name);
    }
    tableAfterTraining = rows;
    chartPoints = await page.evaluate(() => window.tagnetPage.chartPoints);
    assert.equal(chartPoints, 40);
    assert.match(await page.textContent('#results .card[data-name="black_jeans_01.jpg"] .before'), /Before training: .*jeans/);
    await screenshot(page, '06-trained');
  });

  test('the trained model downloads as a .tagnet file the native CLI reads', async (t) => {
    trained = await downloaded(page, '#download-trained');
    assert.equal(trained.subarray(0, 6).toString('latin1'), 'TAGNET');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tagnet-web-dl-'));
    try {
      const file = path.join(dir, 'fine-tuned.tagnet');
      fs.writeFileSync(file, trained);
      const tagnet = process.env.TAGNET;
      if (!tagnet || !fs.existsSync(tagnet)) {
        t.diagnostic('TAGNET is not set: the native check is skipped');
        return;
      }
      const example = bundledExamples().find((e) => e.file === 'black_jeans_01.jpg');
      const out = JSON.parse(execFileSync(tagnet, ['classify', '--model', file, '--image', example.path, '--json'],
                                          { encoding: 'utf8' }));
      t.diagnostic(`native: ${JSON.stringify(out.probabilities)}`);
      assert.deepEqual(out.predicted, ['trousers']);
      // The page's probability for the same picture agrees with the native one (up to the
      // browser's and the CLI's JPEG decoders).
      const web = await page.$eval('#results .card[data-name="black_jeans_01.jpg"] .prob[data-label="trousers"] .prob-value',
                                   (el) => Number.parseFloat(el.textContent) / 100);
      assert.ok(Math.abs(web - out.probabilities.trousers) < 0.01, `web ${web}, native ${out.probabilities.trousers}`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the fine-tuned model is right on pictures it was not taught with', async (t) => {
    // 20 pictures of each of four folders, after the ones taught above.
    const heldOut = [
      ...['blue_jeans', 'black_jeans'].flatMap((f) => pictures(f, 20, 15).map((p) => [p, 'trousers'])),
      ...['red_shirt', 'blue_shirt'].flatMap((f) => pictures(f, 20, 10).map((p) => [p, 'top'])),
    ];
    const before = await page.locator('#results .card').count();
    // Copies with names of their own: the cards are found by file name.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tagnet-web-held-out-'));
    try {
      const files = heldOut.map(([file, label], i) => {
        const copy = path.join(dir, `held-out-${String(i).padStart(2, '0')}-${label}.jpg`);
        fs.copyFileSync(file, copy);
        return copy;
      });
      await page.setInputFiles('#classify-files', files);
      await page.waitForFunction((n) => document.querySelectorAll('#results .card[data-predicted]').length === n,
                                 before + files.length, { timeout: 60_000 });
      const predicted = await page.$$eval('#results .card[data-name^="held-out-"]', (cards) =>
        cards.map((c) => [c.dataset.name, c.dataset.predicted]));
      const right = predicted.filter(([name, p]) => name.endsWith(`-${p}.jpg`)).length;
      t.diagnostic(`${right} of ${heldOut.length} held-out pictures right`);
      assert.ok(right >= 76, `${right} of ${heldOut.length} held-out pictures right`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a reload keeps the trained model and the teaching pictures', async () => {
    await page.reload({ waitUntil: 'domcontentloaded' });
    await waitReady(page);
    assert.deepEqual(await modelLabels(page), ['trousers', 'top']);
    assert.match(await page.textContent('#model-info'), /fine-tuned\.tagnet/);
    assert.equal(await page.isVisible('#decision'), true);
    // The chart and the table of the training come back.
    await page.waitForFunction((n) => window.tagnetPage.chartPoints === n, chartPoints);
    assert.ok(await page.locator('#chart canvas').count() > 0);
    assert.deepEqual(await compareRows(page), tableAfterTraining);
    assert.match(await page.textContent('#train-text'), /^Trained: 40 batches/);
    await page.waitForFunction(() => document.querySelectorAll('#cards .thumb').length === 60);
    assert.deepEqual(await page.$$eval('#cards [data-card]', (els) => els.map((e) => e.dataset.label)),
                     ['trousers', 'top']);
    for (const [label, name, labels] of await teachingPictures(page)) assert.deepEqual(labels, [label], name);
    assert.equal(await page.$eval('input[name="mode"][value="single"]', (el) => el.checked), true);
    await page.click('.example-button[data-file="red_dress_01.jpg"]');
    assert.deepEqual(await cardPredictions(page, 'red_dress_01.jpg'), ['top']);
  });

  test('Go back restores the previous model bit for bit, also after a reload', async () => {
    await page.click('#go-back');
    await page.waitForFunction((labels) => document.querySelector('#model').dataset.labels === labels, defaultModelLabels().join(','));
    await page.locator('#decision').waitFor({ state: 'hidden' });
    assert.equal(await page.isVisible('#download-trained'), false);
    assert.ok((await downloaded(page)).equals(defaultModel()), 'the model after Go back is not the default one');
    await screenshot(page, '07-went-back');
    await page.reload({ waitUntil: 'domcontentloaded' });
    await waitReady(page);
    assert.ok((await downloaded(page)).equals(defaultModel()), 'the default model did not stay after a reload');
    assert.equal(await page.isVisible('#decision'), false);
    // The model trained is one click away, as it was.
    assert.match(await page.textContent('#use-previous'), /fine-tuned\.tagnet/);
    await page.click('#use-previous');
    await page.waitForFunction(() => document.querySelector('#model').dataset.labels === 'trousers,top');
    assert.ok((await downloaded(page)).equals(trained), 'Use the previous model did not bring back the trained model');
    assert.match(await page.textContent('#use-previous'), /default\.tagnet/);
  });

  test('Stop ends a training part-way and leaves a usable model; Keep keeps it', async (t) => {
    await openAdvanced(page);
    await page.fill('#epochs', '200');
    await page.click('#train');
    await page.waitForFunction(() => /Epoch 2\//.test(document.getElementById('train-text').textContent));
    const t0 = Date.now();
    await page.click('#stop');
    await page.waitForFunction(() => window.tagnetPage.lastTraining?.stopped === true, null, { timeout: 15_000 });
    t.diagnostic(`stopped ${Date.now() - t0} ms after the click`);
    assert.match(await page.textContent('#train-text'), /^Stopped/);
    await page.locator('#train:not([disabled])').waitFor();
    await page.click('.example-button[data-file="black_jeans_01.jpg"]');
    await page.waitForFunction(() => document.querySelectorAll('#results .card[data-name="black_jeans_01.jpg"]').length === 1);
    assert.deepEqual(await cardPredictions(page, 'black_jeans_01.jpg'), ['trousers']);
    await page.fill('#epochs', '10');
    // Kept: the model before stays one click away, also after a reload.
    await page.click('#keep-model');
    assert.equal(await page.isVisible('#decision'), false);
    await page.reload({ waitUntil: 'domcontentloaded' });
    await waitReady(page);
    assert.equal(await page.isVisible('#decision'), false);
    assert.deepEqual(await modelLabels(page), ['trousers', 'top']);
    const stopped = await downloaded(page);
    assert.ok(!stopped.equals(trained));
    // Both models are called fine-tuned.tagnet and have the same labels: wait for the loading to end.
    await page.click('#use-previous');
    await page.waitForFunction(() => !document.getElementById('loading').classList.contains('active'));
    assert.match(await page.textContent('#use-previous'), /fine-tuned\.tagnet/);
    assert.ok((await downloaded(page)).equals(trained), 'Use the previous model is not the model before the training');
  });

  test('several labels per picture: the default model learns a new label and trains one of its own', async () => {
    // From the default model, which knows colours; "blue" is one of its labels, "trousers" is new.
    await page.click('#default-model');
    await page.waitForFunction((labels) => document.querySelector('#model').dataset.labels === labels,
                               defaultModelLabels().join(','));
    await page.click('#clear-teach');
    await page.waitForFunction(() => document.querySelectorAll('#cards [data-card]').length === 0);
    await page.check('input[name="mode"][value="multi"]');
    await addCard(page, 'blue');
    await addCard(page, 'trousers');
    await page.click('#add-none');
    const none = '#cards > [data-none]';
    await page.locator(none).waitFor();
    // Blue jeans are blue and trousers: the second label is given on each picture.
    await addToCard(page, 'blue', pictures('blue_jeans', 10));
    for (let i = 0; i < 10; ++i) {
      await page.locator(`${card('blue')} .thumb >> nth=${i}`).locator('.label-toggle[data-label="trousers"]').click();
    }
    await addToCard(page, 'trousers', pictures('black_jeans', 10));
    await addToCard(page, 'blue', pictures('blue_shirt', 10));
    await page.setInputFiles(`${none} .card-files`, pictures('red_shirt', 10));   // neither label
    await page.waitForFunction((sel) => document.querySelectorAll(sel).length === 10, `${none} .thumb`);
    const combos = (await teachingPictures(page)).map(([, , labels]) => labels.join('+'));
    assert.deepEqual([...new Set(combos)].sort(), ['', 'blue', 'blue+trousers', 'trousers']);
    await openAdvanced(page);
    await page.check('input[name="part"][value="head"]');
    const earlier = await page.evaluate(() => window.tagnetPage.lastTeach);
    await page.click('#train');
    await page.waitForFunction((before) => window.tagnetPage.lastTeach !== null &&
                               window.tagnetPage.lastTeach.elapsedMs !== before?.elapsedMs, earlier, { timeout: 60_000 });
    const model = await page.evaluate(() => window.tagnetPage.model);
    assert.equal(model.head, 'sigmoid');
    assert.deepEqual(model.labels, [...defaultModelLabels(), 'trousers']);
    // The label sets the model learnt from: its own, and the taught pictures' with what it saw in them.
    const sets = model.metadata.combinations;
    assert.ok(sets.some((c) => c.includes('blue') && c.includes('trousers')));
    assert.ok(sets.some((c) => c.includes('trousers') && !c.includes('blue')));
    if (await page.isEnabled('#clear-results')) await page.click('#clear-results');
    for (const file of ['black_jeans_01.jpg', 'blue_shirt_01.jpg', 'red_shirt_01.jpg']) {
      await page.click(`.example-button[data-file="${file}"]`);
    }
    const has = async (file, label) => (await cardPredictions(page, file)).includes(label);
    assert.ok(await has('black_jeans_01.jpg', 'trousers'));
    assert.ok(await has('blue_shirt_01.jpg', 'blue'));
    assert.ok(!await has('blue_shirt_01.jpg', 'trousers'));
    assert.ok(!await has('red_shirt_01.jpg', 'trousers'));
    assert.ok(!await has('red_shirt_01.jpg', 'blue'));
    await screenshot(page, '10-multi-label');
  });

  test('a label predicted alone that training only saw with others is pointed out', async () => {
    // Without the blue shirts, blue comes only with trousers.
    const blue = `${card('blue')} .thumb`;
    for (let n = 20; n > 10; --n) {
      await page.locator(`${blue} >> nth=10`).locator('.thumb-remove').click();
      await page.waitForFunction(([sel, left]) => document.querySelectorAll(sel).length === left, [blue, n - 1]);
    }
    // A new head for these two labels only (the head and the last block, Advanced).
    await page.check('input[name="part"][value="block"]');
    await page.fill('#epochs', '10');
    await page.click('#train');
    await page.waitForFunction(() => window.tagnetPage.lastTraining?.examples === 30, null, { timeout: 60_000 });
    const model = await page.evaluate(() => window.tagnetPage.model);
    assert.deepEqual(model.metadata.combinations.map((c) => c.join('+')).sort(), ['blue+trousers', 'trousers']);
    await page.click('#clear-results');
    // Blue alone never came in the teaching: said so when predicted; blue with trousers did.
    await page.click('.example-button[data-file="blue_shirt_01.jpg"]');
    const predicted = await cardPredictions(page, 'blue_shirt_01.jpg');
    const note = page.locator('#results .card[data-name="blue_shirt_01.jpg"] .note');
    if (predicted.join('+') === 'blue') {
      assert.equal(await note.textContent(), 'The label blue alone never occurred in training.');
    } else if (predicted.join('+') === 'blue+trousers') {
      assert.equal(await note.count(), 0);
    }
  });

  test('Use the default model goes back to it', async () => {
    await page.click('#default-model');
    await page.waitForFunction((labels) => document.querySelector('#model').dataset.labels === labels, defaultModelLabels().join(','));
    assert.match(await page.textContent('#model-info'), /default\.tagnet/);
    assert.ok((await downloaded(page)).equals(defaultModel()));
    assert.deepEqual(page.problems, []);
  });
});
