// The bench harness page (bench.html): SmallerVGGNet speed per module variant, each in a fresh
// Web Worker as the page runs the engine (bench-worker.ts). web/bench.mjs calls
// window.runBench() in headless Chromium.
import type { BenchRequest, BenchResult } from './bench-worker';
import type { Variant } from './tagnet-types';

export interface BenchOptions {
  variants?: Variant[];
  threads?: number;
  seconds?: number;
  architecture?: string;
}

export interface BenchReport {
  crossOriginIsolated: boolean;
  hardwareConcurrency: number;
  userAgent: string;
  network: string;
  variants: Partial<Record<Variant, BenchResult>>;
}

const LABELS = ['black', 'blue', 'dress', 'jeans', 'red', 'shirt'];

function benchVariant(request: BenchRequest): Promise<BenchResult> {
  const worker = new Worker(new URL('./bench-worker.ts', import.meta.url), { name: 'tagnet-bench' });
  return new Promise<BenchResult>((resolve, reject) => {
    worker.onmessage = (event: MessageEvent<{ result?: BenchResult; error?: string }>) => {
      if (event.data.result) resolve(event.data.result);
      else reject(new Error(event.data.error ?? 'the bench failed'));
    };
    worker.onerror = (event) => reject(new Error(event.message || 'the bench worker failed to start'));
    worker.postMessage(request);
  }).finally(() => worker.terminate());
}

async function runBench(options: BenchOptions = {}): Promise<BenchReport> {
  const variants = options.variants ?? (crossOriginIsolated ? ['simd', 'simd-threads'] : ['simd']);
  const architecture = options.architecture ?? 'smallervggnet';
  const report: BenchReport = {
    crossOriginIsolated, hardwareConcurrency: navigator.hardwareConcurrency, userAgent: navigator.userAgent,
    network: `${architecture}, 6 sigmoid outputs`, variants: {},
  };
  for (const variant of variants) {
    report.variants[variant] = await benchVariant({
      wasmBase: new URL('wasm/', document.baseURI).href, variant, threads: options.threads ?? 2,
      architecture, labels: LABELS, seconds: options.seconds ?? 3,
    });
  }
  return report;
}

Object.assign(window, { runBench });

const out = document.getElementById('out') as HTMLElement;
document.getElementById('run')?.addEventListener('click', async () => {
  out.textContent = 'running…';
  try {
    out.textContent = JSON.stringify(await runBench(), null, 1);
  } catch (e) {
    out.textContent = `failed: ${e instanceof Error ? e.message : String(e)}`;
  }
});
