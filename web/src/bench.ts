// The bench harness page (bench.html): SmallerVGGNet speed per module variant, each in a fresh
// engine worker as the page uses it. web/bench.mjs calls window.runBench() in headless Chromium.
import { EngineBridge } from './bridge';
import type { BenchResult } from './protocol';
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
  variants: Partial<Record<Variant, BenchResult & { start_ms: number }>>;
}

const LABELS = ['black', 'blue', 'dress', 'jeans', 'red', 'shirt'];

async function runBench(options: BenchOptions = {}): Promise<BenchReport> {
  const variants = options.variants ?? (crossOriginIsolated ? ['simd', 'simd-threads'] : ['simd']);
  const architecture = options.architecture ?? 'smallervggnet';
  const report: BenchReport = {
    crossOriginIsolated, hardwareConcurrency: navigator.hardwareConcurrency, userAgent: navigator.userAgent,
    network: `${architecture}, 6 sigmoid outputs`, variants: {},
  };
  for (const variant of variants) {
    const engine = new EngineBridge(new URL('wasm/', document.baseURI), { variant, threads: options.threads ?? 2 });
    try {
      const started = await engine.init();
      const r = await engine.bench({ architecture, labels: LABELS, seconds: options.seconds ?? 3 });
      report.variants[variant] = { ...r, start_ms: started.startMs };
    } finally {
      engine.cancel();
    }
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
