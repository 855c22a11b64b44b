// The page: classify pictures with a tagnet model and teach it new labels, with the engine in a
// Web Worker (bridge.ts), the model and the teaching pictures kept in IndexedDB (store.ts) and
// the files cached by a service worker for offline use (sw.ts). The page's modules share one
// state (state.ts): classify.ts the results, teach.ts the labels, pictures and settings, train.ts
// training, model.ts the model in use, sources.ts where pictures come from, messages.ts messages
// and the loading bar. This module starts them.
import './style.css';

import { CancelledError } from './bridge';
import { wireCamera } from './camera';
import { wireClassify } from './classify';
import { byId } from './dom';
import { setUpServiceWorker } from './isolation';
import { busy, errorText, showError, showInfo, wireBusy } from './messages';
import { defaultModelBytes, useModel, wireModel } from './model';
import type { InitResult } from './protocol';
import { loadExampleButtons, wireSources } from './sources';
import { markReady, state, store, whenReady } from './state';
import { Store } from './store';
import { restoreTeach, updateTrainButton, wireTeach } from './teach';
import { restoreTraining, wireTraining } from './train';

// Test and debugging hooks: timings, the engine variant, the last training and its chart.
Object.assign(window, {
  tagnetPage: {
    timings: state.timings,
    get engine() { return state.engineInfo; },
    get model() { return state.info; },
    get lastTraining() { return state.lastTraining; },
    get lastTeach() { return state.lastTeach; },
    /** The classified pictures' probabilities, exactly as the engine gave them. */
    get results() {
      return state.results.map((r) => ({ name: r.name, labels: r.prediction?.labels ?? null,
                                         probs: r.prediction ? Array.from(r.prediction.probs) : null,
                                         novelty: r.prediction?.novelty ?? null }));
    },
    get chartPoints() { return state.chart?.points ?? 0; },
  },
});

function describeEngine(r: InitResult): string {
  if (r.variant === 'simd-threads') {
    return `Engine: WebAssembly SIMD with ${r.threads} threads (${r.engine}).`;
  }
  return `Engine: WebAssembly SIMD on one thread (${r.engine}). Threads need a cross-origin isolated ` +
    'page, which this one is not: serve it with tagnet serve, or from a host where its service worker can run.';
}

async function start(): Promise<void> {
  const { engine, timings } = state;
  wireModel();
  wireSources();
  wireClassify();
  wireTeach();
  wireTraining();
  wireCamera();
  wireBusy();
  const isolated = globalThis.crossOriginIsolated === true;
  // An isolated page needs its service worker only for offline use: it registers once the page
  // is ready, so that caching every file (a few megabytes) does not hold up the first
  // classification. Another page may be about to reload into an isolated one.
  const swState = isolated ? whenReady.then(() => setUpServiceWorker(import.meta.env.PROD))
                           : setUpServiceWorker(import.meta.env.PROD);
  if (!isolated && (await swState).isolation === 'reloading') return;
  void swState.then(async (sw) => {
    timings.serviceWorker = performance.now();
    const ok = await sw.offlineReady;
    byId('offline-status').textContent = ok
      ? 'Works offline: every file of this page is stored in this browser.'
      : 'Offline use is not available here (no service worker).';
    document.body.dataset.offline = String(ok);
  });

  // The engine starts first: it takes longest. The example buttons work at once: a click
  // before the model is ready waits for it.
  const started = engine.init().then((r) => {
    state.engineInfo = r;
    timings.engineReady = performance.now();
    byId('engine-status').textContent = describeEngine(r);
    document.body.dataset.variant = r.variant;
    return r;
  });
  void loadExampleButtons();
  await busy('Starting the engine…', async (progress) => {
    // The default model downloads while IndexedDB opens; a model kept from an earlier visit
    // replaces it.
    const fallback = defaultModelBytes(progress);
    fallback.catch(() => undefined);
    state.store = await Store.open();
    const stored = await store().model().catch(() => undefined);
    state.previous = (await store().previousModel().catch(() => undefined)) ?? null;
    state.trial = stored?.trial === true;
    timings.storeReady = performance.now();
    const bytes = stored ? Promise.resolve(stored.bytes) : fallback;
    void bytes.then(() => { timings.modelBytes = performance.now(); }, () => undefined);
    await started;
    progress(null, 'Loading the model…');
    try {
      await useModel(await bytes, stored?.name ?? 'default.tagnet', stored?.source ?? 'default');
    } catch (e) {
      if (!stored) throw e;
      showError(`The model kept in this browser did not load (${errorText(e)}); using the default model.`);
      state.trial = false;
      await useModel(await fallback, 'default.tagnet', 'default');
      await store().clearModel();
    }
    timings.modelReady = performance.now();
  });
  if (!store().persistent) showInfo('This browser does not keep data for this page: teaching pictures are lost on reload.');
  await restoreTeach();
  void restoreTraining();
  markReady();
  for (const id of ['classify-pick', 'download-model']) byId<HTMLButtonElement>(id).disabled = false;
  updateTrainButton();
  timings.ready = performance.now();
  document.body.dataset.ready = 'true';
}

start().catch((e) => {
  byId('engine-status').textContent = `The engine did not start: ${errorText(e)}`;
  document.body.dataset.failed = 'true';
  if (!(e instanceof CancelledError)) showError(`The page could not start: ${errorText(e)}`);
});
