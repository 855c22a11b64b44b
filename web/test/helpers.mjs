// Shared set-up of the browser tests: the server, Debian's Chromium through playwright-core,
// screenshots.
//
// Environment (all optional; web/run-tests.sh sets them):
//   TAGNET_WEB_URL        the page, served by `tagnet serve` (default: web/dist served here,
//                         with the same headers)
//   TAGNET_WEB_DIST       the built page (default: web/dist)
//   TAGNET_WEB_ARTIFACTS  where screenshots go (default: build/web-test-artifacts)
//   CHROMIUM              the browser (default: /usr/bin/chromium)
//   TAGNET_WEB_DEBUG      when set, the pages' console goes to stderr
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before } from 'node:test';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

import { startStaticServer } from './static-server.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
export const webDir = path.resolve(here, '..');
export const repoRoot = path.resolve(webDir, '..');
export const distDir = path.resolve(process.env.TAGNET_WEB_DIST ?? path.join(webDir, 'dist'));
export const artifactsDir = path.resolve(process.env.TAGNET_WEB_ARTIFACTS ??
                                         path.join(repoRoot, 'build', 'web-test-artifacts'));

export const CHROMIUM_FLAGS = [
  '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--no-first-run', '--disable-quic',
  // getUserMedia answers with Chromium's generated test video, without asking.
  '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
];

/** The page's URL: TAGNET_WEB_URL, or dist/ served here with the isolation headers. */
export async function pageServer() {
  if (process.env.TAGNET_WEB_URL) {
    const url = process.env.TAGNET_WEB_URL.endsWith('/') ? process.env.TAGNET_WEB_URL : `${process.env.TAGNET_WEB_URL}/`;
    return { url, close: async () => {} };
  }
  return startStaticServer({ root: distDir, isolate: true });
}

/** A headless Chromium with a fresh profile; close() removes the profile. */
export async function launch(options = {}) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'tagnet-web-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_FLAGS,
    viewport: VIEWPORTS.desktop,
    acceptDownloads: true,
    ...options,
  });
  return {
    context,
    async close() {
      await context.close();
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** A page of `context` whose console errors and page errors are collected in page.problems. */
export async function newPage(context) {
  const page = context.pages()[0] ?? await context.newPage();
  page.problems = [];
  page.on('pageerror', (e) => page.problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') page.problems.push(`console: ${m.text()}`);
    if (process.env.TAGNET_WEB_DEBUG) process.stderr.write(`[page ${m.type()}] ${m.text()}\n`);
  });
  return page;
}

/** Opens the page and waits until its engine and model are ready. */
export async function openApp(page, url, { timeout = 60_000 } = {}) {
  await page.goto(url, { waitUntil: 'domcontentloaded' });
  await waitReady(page, timeout);
}

export async function waitReady(page, timeout = 60_000) {
  await page.waitForFunction(() => document.body.dataset.ready === 'true' || document.body.dataset.failed === 'true',
                             null, { timeout });
  const failed = await page.evaluate(() => document.body.dataset.failed === 'true');
  if (failed) {
    const status = await page.textContent('#engine-status');
    throw new Error(`the page did not start: ${status}; ${page.problems.join('; ')}`);
  }
}

/** The sizes every step is seen at: a laptop and a phone. */
export const VIEWPORTS = { desktop: { width: 1280, height: 800 }, phone: { width: 390, height: 844 } };

/** Screenshots of the page as it is now, at each of VIEWPORTS: <name>-desktop.png, <name>-phone.png. */
export async function screenshot(page, name, { fullPage = true } = {}) {
  fs.mkdirSync(artifactsDir, { recursive: true });
  const size = page.viewportSize();
  const files = [];
  try {
    for (const [kind, viewport] of Object.entries(VIEWPORTS)) {
      await page.setViewportSize(viewport);
      await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve))));
      const file = path.join(artifactsDir, `${name}-${kind}.png`);
      await page.screenshot({ path: file, fullPage });
      files.push(file);
      // Nothing may push the page wider than the screen: a phone would scroll sideways.
      const width = await page.evaluate(() => document.documentElement.scrollWidth);
      assert.ok(width <= viewport.width, `${name}: the page is ${width} pixels wide at ${viewport.width}`);
    }
  } finally {
    await page.setViewportSize(size);
  }
  // After a full-page capture Chromium may shift a page left scrolled to its end between the
  // press and the release of the next click, which then lands on another element.
  await page.evaluate(() => window.scrollTo(0, 0));
  return files;
}

/** The picture files of dist/examples with the labels in their names. */
export function bundledExamples() {
  return JSON.parse(fs.readFileSync(path.join(distDir, 'examples', 'index.json'), 'utf8'))
    .map((e) => ({ ...e, path: path.join(distDir, 'examples', e.file) }));
}

/** The controls on show that have no accessible name (label, aria-label or text), as HTML. */
export async function unlabelledControls(page) {
  return page.evaluate(() => {
    const bad = [];
    for (const el of document.querySelectorAll('button, input, select, [role="button"]')) {
      if (el.closest('[hidden]') || el.getAttribute('aria-hidden') === 'true') continue;
      const name = el.getAttribute('aria-label') || el.labels?.[0]?.textContent || el.textContent ||
                   (el.getAttribute('aria-labelledby') && document.getElementById(el.getAttribute('aria-labelledby'))?.textContent);
      if (!name || !name.trim()) bad.push(el.outerHTML.slice(0, 80));
    }
    return bad;
  });
}

/**
 * The labels a result card marks as predicted, in alphabetical order (the card lists them by
 * probability, and two near-certain labels may come in either order).
 */
export async function cardPredictions(page, name) {
  const card = page.locator(`#results .card[data-name="${name}"]`);
  await card.locator('.probs').waitFor();
  const predicted = await card.getAttribute('data-predicted');
  return predicted ? predicted.split(',').sort() : [];
}

/** Adds a teaching card named `name` (Add a label) and waits for it. */
export async function addCard(page, name) {
  await page.fill('#new-label', name);
  await page.press('#new-label', 'Enter');
  await page.locator(`#cards [data-label="${name}"]`).waitFor();
}

/** The selector of the teaching card named `label`. */
export function card(label) {
  return `#cards > [data-label="${label}"]`;
}

/** Gives the card named `label` these picture files with its file chooser, and waits for them. */
export async function addToCard(page, label, files) {
  const thumbs = `${card(label)} .thumb`;
  const before = await page.locator(thumbs).count();
  await page.setInputFiles(`${card(label)} .card-files`, files);
  await page.waitForFunction(([sel, n]) => document.querySelectorAll(sel).length === n, [thumbs, before + files.length]);
}

/** Every teaching picture as [card label, picture name, its labels (sorted)]. */
export async function teachingPictures(page) {
  return page.$$eval('#cards .thumb', (els) => els.map((el) => [
    el.closest('[data-card]').dataset.label, el.dataset.name,
    el.dataset.labels ? el.dataset.labels.split(',').sort() : [],
  ]));
}

/** The training pictures of the default model, one folder per label combination (web/run-tests.sh makes them). */
export const dataset = process.env.TAGNET_WEB_DATASET ?? path.join(repoRoot, 'build/web/model/fashion-color/dataset');

/** `count` picture files of a dataset folder, in name order, after the first `skip`. */
export function datasetPictures(folder, count, skip = 0) {
  const dir = path.join(dataset, folder);
  return fs.readdirSync(dir).sort().slice(skip, skip + count).map((f) => path.join(dir, f));
}

/**
 * The page of a test file that teaches, for the `describe` block that calls this: served, open and
 * ready in a fresh browser before its tests (with the dataset at hand and confirmations, such as
 * removing a card, accepted), closed after them. The returned object gets `page` once open.
 */
export function teachingApp() {
  const app = {};
  before(async () => {
    assert.ok(fs.existsSync(dataset), `${dataset} is missing (web/run-tests.sh makes it)`);
    app.server = await pageServer();
    app.browser = await launch();
    app.page = await newPage(app.browser.context);
    app.page.on('dialog', (d) => void d.accept());
    await openApp(app.page, app.server.url);
  });
  after(async () => {
    await app.browser?.close();
    await app.server?.close();
  });
  return app;
}

/** The labels of the page's default model, from its file's JSON header. */
export function defaultModelLabels() {
  const bytes = fs.readFileSync(path.join(distDir, 'models', 'default.tagnet'));
  const jsonBytes = Number(bytes.readBigUInt64LE(16));
  return JSON.parse(bytes.subarray(40, 40 + jsonBytes).toString('utf8')).metadata.labels;
}
