// How well and how fast the page fine-tunes, for each choice of what trains and learning rate:
// two new classes (trousers: blue and black jeans; top: shirts and dresses) taught with 60
// pictures as web/test/fine-tune.test.mjs does (10 epochs, batch 16, augmentation), then 120
// pictures it was not taught with (20 from each folder) classified. Each run uses a fresh
// browser profile in headless Chromium, crossOriginIsolated, 2 engine threads.
//
//   node web/measure-fine-tune.mjs [--runs head:0.001,block:0.0005,all:0.0003] [--epochs 10]
//
// Needs web/dist and the dataset web/run-tests.sh makes (build/web/model/fashion-color), or
// TAGNET_WEB_DIST and TAGNET_WEB_DATASET.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { addCard, addToCard, datasetPictures as pictures, distDir, launch, newPage, openApp } from './test/helpers.mjs';
import { startStaticServer } from './test/static-server.mjs';

const { values: args } = parseArgs({
  options: {
    runs: { type: 'string', default: 'head:0.001,block:0.0001,block:0.0003,block:0.0005,block:0.001,all:0.0001,all:0.0003' },
    epochs: { type: 'string', default: '10' },
  },
});
const runs = args.runs.split(',').map((r) => {
  const [part, lr] = r.split(':');
  if (!['head', 'block', 'all'].includes(part) || !(Number(lr) > 0)) {
    throw new Error(`--runs: '${r}' is not PART:RATE with PART head, block or all`);
  }
  return { part, lr: Number(lr) };
});

const taught = {
  trousers: [...pictures('blue_jeans', 15), ...pictures('black_jeans', 15)],
  top: [...pictures('red_shirt', 10), ...pictures('blue_shirt', 10), ...pictures('red_dress', 5),
        ...pictures('blue_dress', 5)],
};
const heldOut = [
  ...[['blue_jeans', 15], ['black_jeans', 15]].flatMap(([f, skip]) =>
    pictures(f, 20, skip).map((p) => ({ file: p, folder: f, label: 'trousers' }))),
  ...[['red_shirt', 10], ['blue_shirt', 10], ['red_dress', 5], ['blue_dress', 5]].flatMap(([f, skip]) =>
    pictures(f, 20, skip).map((p) => ({ file: p, folder: f, label: 'top' }))),
];

async function measure(url, { part, lr }, copies) {
  const browser = await launch();
  try {
    const page = await newPage(browser.context);
    await openApp(page, url);
    await page.check('input[name="mode"][value="single"]');
    for (const [label, files] of Object.entries(taught)) {
      await addCard(page, label);
      await addToCard(page, label, files);
    }
    await page.click('#advanced-summary');
    await page.check(`input[name="part"][value="${part}"]`);
    await page.fill('#lr', String(lr));
    await page.fill('#epochs', args.epochs);
    await page.fill('#batch-size', '16');
    await page.check('#augment');
    await page.click('#train');
    await page.waitForFunction(() => window.tagnetPage.lastTraining !== null, null, { timeout: 600_000 });
    const training = await page.evaluate(() => window.tagnetPage.lastTraining);
    await page.setInputFiles('#classify-files', copies);
    await page.waitForFunction((n) => document.querySelectorAll('#results .card[data-predicted]').length === n,
                               copies.length, { timeout: 300_000 });
    const predicted = await page.$$eval('#results .card', (cards) =>
      cards.map((c) => [c.dataset.name, c.dataset.predicted]));
    const wrong = {};
    let right = 0;
    for (const [name, p] of predicted) {
      const item = heldOut[Number(/^held-out-(\d+)/.exec(name)[1])];
      if (p === item.label) ++right;
      else wrong[item.folder] = (wrong[item.folder] ?? 0) + 1;
    }
    return { seconds: training.elapsedMs / 1000, params: training.trainableParams, right, wrong };
  } finally {
    await browser.close();
  }
}

const server = await startStaticServer({ root: process.env.TAGNET_WEB_DIST ?? distDir, isolate: true });
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tagnet-measure-'));
try {
  // Copies with names of their own: the result cards are found by file name.
  const copies = heldOut.map((h, i) => {
    const copy = path.join(dir, `held-out-${i}.jpg`);
    fs.copyFileSync(h.file, copy);
    return copy;
  });
  console.log(`${taught.trousers.length + taught.top.length} pictures taught, ${args.epochs} epochs; ` +
              `${heldOut.length} held-out pictures`);
  console.log('part   rate     trained params  seconds  right  wrong by folder');
  for (const run of runs) {
    const r = await measure(server.url, run, copies);
    const wrong = Object.entries(r.wrong).map(([f, n]) => `${f} ${n}`).join(', ') || '-';
    console.log(`${run.part.padEnd(6)} ${String(run.lr).padEnd(8)} ${String(r.params).padStart(14)}  ` +
                `${r.seconds.toFixed(1).padStart(7)}  ${String(r.right).padStart(3)}/${heldOut.length}  ${wrong}`);
  }
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
  await server.close();
}
