// Speed of the WASM build under Node, SmallerVGGNet 96x96x3 (the multi-label tutorial network):
// classify latency at batch 1, classify throughput at batch 32, training throughput at batch 32
// (Adam), for each module variant; plus the gzip -9 sizes of the modules.
//
//   node wasm/bench.mjs [--json] [--variant simd|simd-threads] [--threads N] [--seconds S]
//                       [--dir build/wasm-release/wasm]
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import zlib from 'node:zlib';

import { createTagnet, VARIANTS } from './tagnet.js';

const here = path.dirname(fileURLToPath(import.meta.url));

const { values: args } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    variant: { type: 'string', multiple: true },
    threads: { type: 'string' },
    seconds: { type: 'string', default: '3' },
    dir: { type: 'string', default: process.env.TAGNET_WASM_DIR ??
                                    path.join(here, '..', 'build', 'wasm-release', 'wasm') },
  },
});

const budget = Number(args.seconds);
const variants = args.variant ?? [...VARIANTS];
const dir = path.resolve(args.dir);

// Runs fn until `seconds` have passed (at least `min` times) after one untimed warm-up run;
// returns the median time per run in ms.
function time(fn, seconds = budget, min = 3) {
  fn();
  const runs = [];
  const start = performance.now();
  while (runs.length < min || performance.now() - start < seconds * 1000) {
    const t0 = performance.now();
    fn();
    runs.push(performance.now() - t0);
  }
  runs.sort((a, b) => a - b);
  return runs[runs.length >> 1];
}

function picture(seed, W = 96, H = 96) {
  const rgba = new Uint8Array(W * H * 4);
  let s = seed >>> 0;
  for (let i = 0; i < rgba.length; ++i) {
    s = (s * 1664525 + 1013904223) >>> 0;
    rgba[i] = (i & 3) === 3 ? 255 : s >>> 24;
  }
  return { rgba, width: W, height: H };
}

function gzipSize(file) {
  return zlib.gzipSync(fs.readFileSync(file), { level: 9 }).length;
}

async function benchVariant(variant) {
  const threads = args.threads !== undefined ? Number(args.threads) : undefined;
  const tagnet = await createTagnet({ variant, threads, baseUrl: pathToFileURL(dir + path.sep) });
  const labels = ['black', 'blue', 'dress', 'jeans', 'red', 'shirt'];
  const model = tagnet.createModel('smallervggnet', { labels, head: 'sigmoid', seed: 1 });
  const pics = Array.from({ length: 32 }, (_, i) => picture(i + 1));
  const trainer = model.createTrainer({ lr: 1e-3, batchSize: 32, seed: 1 });
  try {
    const one = pics[0];
    const b1 = time(() => model.classify(one.rgba, one.width, one.height));
    const b32 = time(() => model.classifyBatch(pics));
    for (const [i, p] of pics.entries()) {
      trainer.addExample(p.rgba, p.width, p.height, labels.map((_, k) => Number((i >> k) & 1)));
    }
    const train = time(() => trainer.step(), budget * 2);
    const name = `tagnet-${variant}`;
    return {
      engine: tagnet.engine,
      threads: tagnet.threads,
      classify_b1_ms: b1,
      classify_b32_images_per_s: 32000 / b32,
      train_b32_images_per_s: 32000 / train,
      train_b32_step_ms: train,
      wasm_gzip_bytes: gzipSize(path.join(dir, `${name}.wasm`)),
      js_gzip_bytes: gzipSize(path.join(dir, `${name}.mjs`)) +
        (fs.existsSync(path.join(dir, `${name}.worker.js`)) ? gzipSize(path.join(dir, `${name}.worker.js`)) : 0),
      heap_bytes: tagnet.heapBytes(),
    };
  } finally {
    trainer.delete();
    model.delete();
    tagnet.dispose();
  }
}

const results = { network: 'smallervggnet 96x96x3, 6 sigmoid outputs', node: process.version, variants: {} };
for (const v of variants) results.variants[v] = await benchVariant(v);

if (args.json) {
  console.log(JSON.stringify(results, null, 1));
} else {
  console.log(`tagnet WASM bench: ${results.network}, Node ${results.node}`);
  for (const [v, r] of Object.entries(results.variants)) {
    console.log(`\n${v} (${r.engine})`);
    console.log(`  classify, batch 1:   ${r.classify_b1_ms.toFixed(1).padStart(8)} ms`);
    console.log(`  classify, batch 32:  ${r.classify_b32_images_per_s.toFixed(1).padStart(8)} images/s`);
    console.log(`  training, batch 32:  ${r.train_b32_images_per_s.toFixed(1).padStart(8)} images/s` +
                ` (${r.train_b32_step_ms.toFixed(0)} ms per batch)`);
    console.log(`  gzip -9: .wasm ${(r.wasm_gzip_bytes / 1e6).toFixed(3)} MB, JS ${(r.js_gzip_bytes / 1e6).toFixed(3)} MB;` +
                ` heap ${(r.heap_bytes / 1048576).toFixed(0)} MiB`);
  }
}
