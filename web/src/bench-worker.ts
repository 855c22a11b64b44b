// The bench harness's worker (bench.html): times the WebAssembly module in a Web Worker, as
// the page's engine worker runs it, without being part of the page's own worker.
import type { RgbaImage } from './protocol';
import type { Tagnet, Variant } from './tagnet-types';

export interface BenchRequest {
  wasmBase: string;
  variant: Variant;
  threads: number;
  architecture: string;
  labels: string[];
  seconds: number;
}

export interface BenchResult {
  engine: string;
  variant: Variant;
  threads: number;
  params: number;
  start_ms: number;
  classify_b1_ms: number;
  classify_b32_images_per_s: number;
  train_b32_images_per_s: number;
  train_b32_step_ms: number;
  heap_bytes: number;
}

// Median milliseconds per call of fn over `seconds` (at least 3 calls) after one warm-up call.
function time(fn: () => void, seconds: number, min = 3): number {
  fn();
  const runs: number[] = [];
  const start = performance.now();
  while (runs.length < min || performance.now() - start < seconds * 1000) {
    const t0 = performance.now();
    fn();
    runs.push(performance.now() - t0);
  }
  runs.sort((a, b) => a - b);
  return runs[runs.length >> 1];
}

function picture(seed: number, size: number): RgbaImage {
  const rgba = new Uint8Array(size * size * 4);
  let s = seed >>> 0;
  for (let i = 0; i < rgba.length; ++i) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    rgba[i] = (i & 3) === 3 ? 255 : s >>> 24;
  }
  return { rgba, width: size, height: size };
}

function measure(t: Tagnet, r: BenchRequest, startMs: number): BenchResult {
  const m = t.createModel(r.architecture as 'smallervggnet', { labels: r.labels, head: 'sigmoid', seed: 1 });
  const size = m.info().inputShape[0];
  const pics = Array.from({ length: 32 }, (_, i) => picture(i + 1, size));
  const trainer = m.createTrainer({ lr: 1e-3, batchSize: 32, seed: 1 });
  try {
    const one = pics[0];
    const b1 = time(() => m.classify(one.rgba, one.width, one.height), r.seconds);
    const b32 = time(() => m.classifyBatch(pics), r.seconds);
    pics.forEach((p, i) => trainer.addExample(p.rgba, p.width, p.height, r.labels.map((_, k) => (i >> k) & 1)));
    const step = time(() => trainer.step(), r.seconds * 2);
    return {
      engine: t.engine, variant: t.variant, threads: t.threads, params: m.info().params, start_ms: startMs,
      classify_b1_ms: b1,
      classify_b32_images_per_s: 32000 / b32,
      train_b32_images_per_s: 32000 / step,
      train_b32_step_ms: step,
      heap_bytes: t.heapBytes(),
    };
  } finally {
    trainer.delete();
    m.delete();
  }
}

self.onmessage = async (event: MessageEvent<BenchRequest>) => {
  const r = event.data;
  let t: Tagnet | null = null;
  try {
    const t0 = performance.now();
    const mod = (await import(/* @vite-ignore */ new URL('tagnet.js', r.wasmBase).href)) as typeof import('../../wasm/tagnet.js');
    t = await mod.createTagnet({ variant: r.variant, threads: r.threads, baseUrl: r.wasmBase });
    self.postMessage({ result: measure(t, r, performance.now() - t0) });
  } catch (e) {
    self.postMessage({ error: e instanceof Error ? e.message : String(e) });
  } finally {
    t?.dispose();
  }
};
