// Teaching the default model new labels as a user does (cards, file choosers, Train with the
// defaults), judged on pictures it was not taught with: 15 pictures per label of two
// Fashion-MNIST classes its pretraining never saw (sandal, bag), then of a hard pair it knows
// (pullover, coat); 200 more pictures of each class classified through the page. The model's
// own labels answer the bundled examples exactly as before.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { before, describe, test } from 'node:test';

import { addCard, addToCard, bundledExamples, repoRoot, screenshot, teachingApp } from './helpers.mjs';

const sets = process.env.TAGNET_WEB_TEACH_SETS ?? path.join(repoRoot, 'build/web/model/teach');

function files(pair, split, label, count) {
  const dir = path.join(sets, pair, split, label);
  return fs.readdirSync(dir).sort().slice(0, count).map((f) => path.join(dir, f));
}

const results = (page) => page.evaluate(() => window.tagnetPage.results);

async function classifyFiles(page, list) {
  if (await page.isEnabled('#clear-results')) await page.click('#clear-results');
  await page.setInputFiles('#classify-files', list);
  await page.waitForFunction((n) => {
    const r = window.tagnetPage.results;
    return r.length === n && r.every((x) => x.probs !== null);
  }, list.length, { timeout: 120_000 });
  return results(page);
}

/** Teaches `labels` from 15 pictures each and returns the share of 200 unseen pictures each right. */
async function teachAndTest(page, t, pair, labels, shot) {
  if (await page.isEnabled('#clear-teach')) await page.click('#clear-teach');
  await page.waitForFunction(() => document.querySelectorAll('#cards [data-card]').length === 0);
  for (const l of labels) {
    await addCard(page, l);
    await addToCard(page, l, files(pair, 'train', l, 15));
  }
  const earlier = await page.evaluate(() => window.tagnetPage.lastTeach);
  await page.click('#train');
  await page.waitForFunction((before) => {
    const now = window.tagnetPage.lastTeach;
    return now !== null && (before === null || now.elapsedMs !== before.elapsedMs);
  }, earlier, { timeout: 120_000 });
  const teach = await page.evaluate(() => window.tagnetPage.lastTeach);
  await page.locator('#teach-report:not([hidden]) .report-table').waitFor();
  const shown = await page.textContent('#teach-report');
  for (const l of labels) assert.match(shown, new RegExp(`${l}\\s*15`));
  await page.locator('#teach-report').scrollIntoViewIfNeeded();
  await screenshot(page, shot);

  const unseen = labels.flatMap((l) => files(pair, 'validation', l, 200).map((f) => [l, f]));
  const r = await classifyFiles(page, unseen.map(([, f]) => f));
  let right = 0;
  r.forEach((x, i) => {
    const p = labels.map((l) => x.probs[x.labels.indexOf(l)]);
    if (labels[p.indexOf(Math.max(...p))] === unseen[i][0]) ++right;
  });
  const acc = right / unseen.length;
  t.diagnostic(`${pair}: taught from ${teach.examples} pictures in ${(teach.elapsedMs / 1000).toFixed(1)} s ` +
    `(features ${teach.report.featureSeconds.toFixed(2)} s, training ${teach.report.trainSeconds.toFixed(2)} s); ` +
    `kept aside ${teach.report.right}/${teach.report.heldOut}; unseen pictures ${right}/${unseen.length} ` +
    `(${(100 * acc).toFixed(1)}%)`);
  return acc;
}

describe('learn', () => {
  const app = teachingApp();
  let page;
  let defaultLabels;
  let examplesBefore;
  before(() => { page = app.page; });

  test('the bundled examples, before teaching', async () => {
    defaultLabels = (await page.evaluate(() => window.tagnetPage.model)).labels;
    examplesBefore = await classifyFiles(page, bundledExamples().map((e) => e.path));
    await page.check('input[name="mode"][value="single"]');
  });

  test('sandal and bag, never seen in pretraining: 90% of unseen pictures right', async (t) => {
    const acc = await teachAndTest(page, t, 'sandal-bag', ['sandal', 'bag'], 'learn-01-sandal-bag-taught');
    assert.ok(acc >= 0.9, `sandal-bag: ${acc}`);
    assert.deepEqual((await page.evaluate(() => window.tagnetPage.model)).labels, [...defaultLabels, 'sandal', 'bag']);
  });

  test('the old labels answer the bundled examples exactly as before', async (t) => {
    const after = await classifyFiles(page, bundledExamples().map((e) => e.path));
    let worst = 0;
    after.forEach((x, i) => {
      assert.equal(x.name, examplesBefore[i].name);
      defaultLabels.forEach((l, k) => {
        worst = Math.max(worst, Math.abs(x.probs[x.labels.indexOf(l)] - examplesBefore[i].probs[k]));
      });
    });
    t.diagnostic(`novelty before: ${examplesBefore.map((x) => x.novelty.toFixed(2)).join(' ')}; after: ${after.map((x) => x.novelty.toFixed(2)).join(' ')}`);
    assert.ok(worst <= 1e-6, `old labels moved by ${worst}`);
    await screenshot(page, 'learn-02-examples-after', { fullPage: false });
  });

  test('pullover and coat, a hard pair: 75% of unseen pictures right', async (t) => {
    await page.click('#go-back');   // from the default model again
    await page.waitForFunction((n) => window.tagnetPage.model.labels.length === n, defaultLabels.length);
    const acc = await teachAndTest(page, t, 'pullover-coat', ['pullover', 'coat'], 'learn-03-pullover-coat-taught');
    assert.ok(acc >= 0.75, `pullover-coat: ${acc}`);
  });
});
