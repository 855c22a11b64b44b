// ONNX Runtime Web as a benchmark peer of `node web/bench.mjs`: SmallerVGGNet 96x96x3 (NHWC input,
// random weights, exported by torch_peer.py) classified in the same headless Chromium,
// crossOriginIsolated, with the same thread count. Prints one JSON object.
//
//   node scripts/peers/ort-web.mjs --model build/peers/smallervggnet-nhwc.onnx [--seconds 3] [--threads 2]
//
// Needs `npm ci` in scripts/peers (scripts/bench-vs-peers.sh does it).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { launch, newPage } from '../../web/test/helpers.mjs';
import { startStaticServer } from '../../web/test/static-server.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const { values: args } = parseArgs({
  options: {
    model: { type: 'string' },
    seconds: { type: 'string', default: '3' },
    threads: { type: 'string', default: '2' },
  },
});
if (!args.model) throw new Error('--model FILE.onnx is required');

// One folder served with the isolation headers: the page, ORT's script and wasm files, the model.
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tagnet-ort-web-'));
const dist = path.join(here, 'node_modules/onnxruntime-web/dist');
for (const f of fs.readdirSync(dist)) {
  if (/^ort\.wasm\.min\.js$|^ort-wasm-simd-threaded\.(wasm|mjs)$/.test(f)) fs.copyFileSync(path.join(dist, f), path.join(root, f));
}
fs.copyFileSync(path.join(here, 'ort-web.html'), path.join(root, 'index.html'));
fs.copyFileSync(args.model, path.join(root, 'model.onnx'));

const server = await startStaticServer({ root, isolate: true });
const browser = await launch();
try {
  const page = await newPage(browser.context);
  page.setDefaultTimeout(0);
  await page.goto(server.url, { waitUntil: 'load' });
  const report = await page.evaluate((o) => window.runOrt(o), { seconds: Number(args.seconds), threads: Number(args.threads) });
  if (!report.crossOriginIsolated) throw new Error('the ORT page is not crossOriginIsolated: it would run one thread');
  report.browser = browser.context.browser()?.version() ?? null;
  console.log(JSON.stringify(report));
} finally {
  await browser.close();
  await server.close();
  fs.rmSync(root, { recursive: true, force: true });
}
