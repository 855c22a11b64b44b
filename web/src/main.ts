// The page: classify pictures with a tagnet model and teach it new labels, with the engine in a
// Web Worker (bridge.ts), the model and the teaching pictures kept in IndexedDB (store.ts) and
// the files cached by a service worker for offline use (sw.ts).
import './style.css';

import { CancelledError, EngineBridge } from './bridge';
import type { TrainingChart } from './chart';
import { byId, download, formatBytes, formatCount, h } from './dom';
import { Camera, decodePicture, filesOf, NotAnImageError, type Picture } from './images';
import { setUpServiceWorker } from './isolation';
import { looksLikeModel } from './modelfile';
import { combinationsOf, comboKey, isUnseenCombination, percent, predictedIndices } from './predict';
import type { InitResult, LoadedModel, TrainExample, TrainPart, TrainResult } from './protocol';
import { Store, type StoredExample, type TeachSettings } from './store';

// ---- state ----

interface Prediction {
  probs: Float32Array;
  labels: string[];
  head: LoadedModel['head'];
  combos: Set<string>;
}

interface ResultItem {
  id: number;
  name: string;
  url: string;
  picture: Picture;
  prediction: Prediction | null;
  /** The prediction of the model before the last training, when there was one. */
  before: Prediction | null;
}

interface ExampleItem extends StoredExample {
  id: number;
  url: string;
}

interface PageTimings {
  /** performance.now() at each milestone (ms since navigation). */
  serviceWorker?: number;
  /** IndexedDB open and read. */
  storeReady?: number;
  /** The model's bytes at hand. */
  modelBytes?: number;
  engineReady?: number;
  modelReady?: number;
  ready?: number;
  firstClassification?: number;
  /** Milliseconds the last classification took in the engine worker, round trip. */
  lastClassifyMs?: number;
  /** Milliseconds the engine took to load the last model, round trip. */
  lastLoadMs?: number;
}

const timings: PageTimings = {};
let engineInfo: InitResult | null = null;
let lastTraining: (TrainResult & { examples: number }) | null = null;

let store: Store;
let engine: EngineBridge;
let info: LoadedModel | null = null;
let combos = new Set<string>();
let modelBytes: Uint8Array | null = null;
let modelName = 'default.tagnet';
let modelSource: 'default' | 'file' | 'fine-tuned' = 'default';
let threshold = 0.5;
let results: ResultItem[] = [];
let examples: ExampleItem[] = [];
let nextResultId = 1;
let ready = false;
let markReady: () => void = () => {};
/** Resolves when the engine and the model are ready. */
const whenReady = new Promise<void>((resolve) => { markReady = resolve; });
let training = false;
let stopTimer = 0;

const teach: TeachSettings = {
  mode: 'multi', labels: [], part: 'head', epochs: 10, lr: 1e-3, batchSize: 16, augment: true, threshold: null,
};
/**
 * The learning rate each choice of trained layers starts with: gentler as more pretrained layers
 * train, but not so slow that a new head is still near its random start after 10 epochs
 * (web/README.md has the measurements).
 */
const LEARNING_RATES: Record<TrainPart, number> = { head: 1e-3, block: 5e-4, all: 3e-4 };

/** Labels that newly added teaching pictures get. */
const targetLabels = new Set<string>();

// uPlot loads with the first training, not with the page.
let chartInstance: TrainingChart | null = null;
async function trainingChart(): Promise<TrainingChart> {
  if (!chartInstance) {
    const { TrainingChart: Chart } = await import('./chart');
    chartInstance = new Chart(byId('chart'));
  }
  return chartInstance;
}
const camera = new Camera(byId<HTMLVideoElement>('camera-video'));
let cameraTarget: 'classify' | 'teach' = 'classify';

// Test and debugging hooks: timings, the engine variant, the last training.
Object.assign(window, {
  tagnetPage: {
    timings,
    get engine() { return engineInfo; },
    get model() { return info; },
    get lastTraining() { return lastTraining; },
  },
});

// ---- messages and progress ----

function showMessage(text: string, kind: 'error' | 'info' = 'error'): void {
  const box = byId('messages');
  const item = h('p', { class: `message ${kind}` }, h('span', { class: 'message-text', text }),
    h('button', { type: 'button', class: 'dismiss', 'aria-label': 'Dismiss message', text: '×',
      onclick: () => item.remove() }));
  box.append(item);
  if (kind === 'info') setTimeout(() => item.remove(), 8000);
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

let busyDepth = 0;

/** Shows the loading bar while `work` runs; `cancellable` offers a Cancel button that ends the worker. */
async function busy<T>(text: string, work: (progress: (fraction: number | null, text?: string) => void) => Promise<T>,
                       cancellable = false): Promise<T> {
  const box = byId('loading');
  const bar = byId<HTMLProgressElement>('loading-bar');
  const label = byId('loading-text');
  const cancel = byId<HTMLButtonElement>('loading-cancel');
  ++busyDepth;
  box.classList.add('active');
  label.textContent = text;
  bar.removeAttribute('value');
  cancel.hidden = !cancellable;
  const progress = (fraction: number | null, t?: string) => {
    if (fraction === null) bar.removeAttribute('value');
    else bar.value = fraction;
    if (t) label.textContent = t;
  };
  try {
    return await work(progress);
  } finally {
    if (--busyDepth === 0) {
      box.classList.remove('active');
      cancel.hidden = true;
      label.textContent = '';
    }
  }
}

// ---- the model ----

async function fetchWithProgress(url: string, progress: (f: number | null, t?: string) => void): Promise<Uint8Array> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  const total = Number(response.headers.get('Content-Length')) || 0;
  if (!response.body || !total) return new Uint8Array(await response.arrayBuffer());
  const reader = response.body.getReader();
  const out = new Uint8Array(total);
  let got = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (got + value.length > total) throw new Error(`${url}: longer than announced`);
    out.set(value, got);
    got += value.length;
    progress(got / total, `Loading the model: ${formatBytes(got)} of ${formatBytes(total)}`);
  }
  return got === total ? out : out.slice(0, got);
}

function renderModel(): void {
  const dl = byId('model-info');
  dl.replaceChildren();
  const list = byId('model-labels');
  list.replaceChildren();
  if (!info) return;
  const [H, W, C] = info.inputShape;
  const kind = info.head === 'sigmoid' ? 'multi-label (sigmoid)' : info.head === 'softmax'
    ? 'single-label (softmax)' : 'two classes (one logit)';
  const rows: [string, string][] = [
    ['File', `${modelName}${modelBytes ? ` (${formatBytes(modelBytes.length)})` : ''}`],
    ['Network', `${info.architecture || 'unnamed'}, ${W}×${H}×${C} input, ${formatCount(info.params)} parameters`],
    ['Outputs', `${info.labels.length} labels, ${kind}`],
  ];
  const ft = info.metadata.fine_tuned as Record<string, unknown> | undefined;
  if (ft) rows.push(['Fine-tuned', `on ${ft.examples} pictures in this browser`]);
  for (const [k, v] of rows) dl.append(h('dt', { text: k }), h('dd', { text: v }));
  for (const l of info.labels) list.append(h('li', { class: 'chip', text: l }));
  byId('model').dataset.labels = info.labels.join(',');

  // Threshold: the model's own, unless the user moved the slider.
  const slider = byId<HTMLInputElement>('threshold');
  const sigmoid = info.head === 'sigmoid';
  slider.disabled = !sigmoid;
  byId('threshold-note').textContent = sigmoid
    ? 'labels above it are highlighted'
    : 'one class per picture: the most probable one is highlighted';
  const mdThreshold = typeof info.metadata.threshold === 'number' ? info.metadata.threshold : 0.5;
  setThreshold(teach.threshold ?? mdThreshold);
  renderPartHints();
}

function setThreshold(t: number): void {
  threshold = t;
  const slider = byId<HTMLInputElement>('threshold');
  slider.value = String(t);
  byId('threshold-value').textContent = t.toFixed(2);
}

/** Makes `bytes` the page's model. Throws (keeping the current model) when they are not one. */
async function useModel(bytes: Uint8Array, name: string, source: typeof modelSource, save: boolean): Promise<void> {
  const t0 = performance.now();
  const newInfo = await engine.load(bytes);
  timings.lastLoadMs = performance.now() - t0;
  info = newInfo;
  combos = combinationsOf(newInfo);
  modelBytes = bytes;
  modelName = name;
  modelSource = source;
  renderModel();
  byId<HTMLButtonElement>('default-model').disabled = source === 'default';
  if (save) {
    if (source === 'default') await store.clearModel();
    else await store.saveModel({ bytes, name, source, savedAt: Date.now() });
  }
  await reclassifyAll();
  syncTeachToModel();
}

function modelErrorText(name: string, e: unknown): string {
  const detail = errorText(e).replace(/^model bytes: /, '');
  return /^not a tagnet model/.test(detail) ? `${name}: ${detail}` : `${name}: not a tagnet model: ${detail}`;
}

async function openModelFile(file: File): Promise<void> {
  await busy(`Opening ${file.name}…`, async () => {
    const bytes = new Uint8Array(await file.arrayBuffer());
    if (!looksLikeModel(bytes)) {
      showMessage(`${file.name}: not a tagnet model (it does not start like a .tagnet file)`);
      return;
    }
    try {
      await useModel(bytes, file.name, 'file', true);
      showMessage(`Opened ${file.name}.`, 'info');
    } catch (e) {
      if (e instanceof CancelledError) return;
      showMessage(modelErrorText(file.name, e));
    }
  }, true);
}

async function defaultModelBytes(progress: (f: number | null, t?: string) => void): Promise<Uint8Array> {
  return fetchWithProgress(new URL('models/default.tagnet', document.baseURI).href, progress);
}

// ---- classification ----

function predictionNow(probs: Float32Array): Prediction {
  if (!info) throw new Error('no model');
  return { probs, labels: info.labels, head: info.head, combos };
}

async function classifyPictures(pictures: Picture[]): Promise<void> {
  if (!pictures.length) return;
  const items: ResultItem[] = pictures.map((picture) => ({
    id: nextResultId++, name: picture.name, url: URL.createObjectURL(picture.blob), picture,
    prediction: null, before: null,
  }));
  results.push(...items);
  renderResults();
  try {
    const t0 = performance.now();
    const what = pictures.length === 1 ? pictures[0].name : `${pictures.length} pictures`;
    const rows = await busy(`Classifying ${what}…`, async (progress) => {
      // In parts, to show progress on long lists.
      const out: Float32Array[] = [];
      for (let i = 0; i < pictures.length; i += 32) {
        out.push(...await engine.classify(pictures.slice(i, i + 32)));
        if (pictures.length > 32) progress(out.length / pictures.length, `Classifying ${what}: ${out.length} done…`);
      }
      return out;
    }, pictures.length > 8);
    timings.lastClassifyMs = performance.now() - t0;
    rows.forEach((probs, i) => { items[i].prediction = predictionNow(probs); });
    if (timings.firstClassification === undefined) timings.firstClassification = performance.now();
  } catch (e) {
    results = results.filter((r) => !items.includes(r));
    items.forEach((r) => URL.revokeObjectURL(r.url));
    if (!(e instanceof CancelledError)) showMessage(`Classification failed: ${errorText(e)}`);
  }
  renderResults();
}

async function reclassifyAll(): Promise<void> {
  if (!results.length || !info) return;
  const rows = await engine.classify(results.map((r) => r.picture));
  rows.forEach((probs, i) => { results[i].prediction = predictionNow(probs); });
  renderResults();
}

function predictedLabels(p: Prediction): string[] {
  return predictedIndices(p.probs, p.head, threshold).map((i) => p.labels[i]);
}

function summary(p: Prediction): string {
  const idx = predictedIndices(p.probs, p.head, threshold);
  if (!idx.length) return 'no label above the threshold';
  return idx.map((i) => `${p.labels[i]} ${percent(p.probs[i])}`).join(', ');
}

function renderProbabilities(p: Prediction): HTMLElement {
  const chosen = new Set(predictedIndices(p.probs, p.head, threshold));
  const order = Array.from({ length: p.probs.length }, (_, i) => i).sort((a, b) => p.probs[b] - p.probs[a]);
  const list = h('ul', { class: 'probs' });
  for (const i of order) {
    const pct = percent(p.probs[i]);
    list.append(h('li', { class: chosen.has(i) ? 'prob above' : 'prob', 'data-label': p.labels[i] },
      h('span', { class: 'prob-name', text: p.labels[i] }),
      h('span', { class: 'prob-bar', 'aria-hidden': 'true' },
        h('span', { class: 'prob-fill', style: { width: `${Math.max(0.5, p.probs[i] * 100)}%` } })),
      h('span', { class: 'prob-value', text: pct }),
      chosen.has(i) ? h('span', { class: 'visually-hidden', text: ' (predicted)' }) : null));
  }
  return list;
}

function renderResults(): void {
  const grid = byId('results');
  grid.replaceChildren();
  for (const r of results) {
    const body = h('div', { class: 'card-body' }, h('h3', { class: 'card-title', text: r.name }));
    const card = h('li', { class: 'card', 'data-name': r.name },
      h('img', { src: r.url, alt: r.name, width: 96, height: 96 }), body);
    if (!r.prediction) {
      body.append(h('p', { class: 'hint', text: 'classifying…' }));
    } else {
      const predicted = predictedLabels(r.prediction);
      card.dataset.predicted = predicted.join(',');
      body.append(renderProbabilities(r.prediction));
      if (isUnseenCombination(predicted, r.prediction.head, r.prediction.combos)) {
        card.dataset.unseen = 'true';
        body.append(h('p', { class: 'note', text:
          `This combination (${[...predicted].sort().join(', ')}) never occurred together in training.` }));
      }
      if (r.before) body.append(h('p', { class: 'before', text: `Before training: ${summary(r.before)}` }));
    }
    grid.append(card);
  }
  byId<HTMLButtonElement>('clear-results').disabled = !results.length;
}

async function picturesFrom(files: File[]): Promise<Picture[]> {
  const out: Picture[] = [];
  for (const f of files) {
    try {
      out.push(await decodePicture(f, f.name || 'pasted picture'));
    } catch (e) {
      showMessage(e instanceof NotAnImageError ? e.message : `${f.name}: ${errorText(e)}`);
    }
  }
  return out;
}

async function classifyFiles(files: File[]): Promise<void> {
  await whenReady;
  const models = [];
  const pictures: File[] = [];
  for (const f of files) {
    // A model file dropped among pictures opens as the model.
    if (f.name.endsWith('.tagnet')) models.push(f);
    else pictures.push(f);
  }
  for (const m of models) await openModelFile(m);
  await classifyPictures(await picturesFrom(pictures));
}

// ---- teaching ----

function exampleUrl(e: StoredExample): string {
  return URL.createObjectURL(e.blob);
}

async function saveTeach(): Promise<void> {
  teach.threshold = threshold;
  try {
    await store.saveSettings({ ...teach, labels: [...teach.labels] });
  } catch (e) {
    showMessage(`Could not save the settings: ${errorText(e)}`);
  }
}

function renderTeachLabels(): void {
  const list = byId('teach-labels');
  list.replaceChildren();
  for (const label of teach.labels) {
    const count = examples.filter((e) => e.labels.includes(label)).length;
    list.append(h('li', { class: 'label-item', 'data-label': label },
      h('span', { class: 'chip', text: label }),
      h('span', { class: 'hint', text: `${count} picture${count === 1 ? '' : 's'}` }),
      h('button', { type: 'button', class: 'small', 'aria-label': `Remove the label ${label}`, text: 'Remove',
        onclick: () => void removeLabel(label) })));
  }
  // The labels new pictures get.
  const box = byId('target-labels');
  box.querySelectorAll('label, input').forEach((el) => el.remove());
  byId('target-empty').hidden = teach.labels.length > 0;
  for (const label of teach.labels) {
    const input = h('input', {
      type: teach.mode === 'multi' ? 'checkbox' : 'radio', name: 'target', value: label,
      checked: targetLabels.has(label),
      onchange: (ev: Event) => {
        const el = ev.target as HTMLInputElement;
        if (teach.mode === 'single') targetLabels.clear();
        if (el.checked) targetLabels.add(label);
        else targetLabels.delete(label);
      },
    });
    box.append(h('label', {}, input, ` ${label}`));
  }
}

function renderExamples(): void {
  const grid = byId('examples');
  grid.replaceChildren();
  for (const e of examples) {
    const editors = h('div', { class: 'example-labels' });
    if (teach.mode === 'multi') {
      for (const label of teach.labels) {
        editors.append(h('label', { class: 'check' }, h('input', {
          type: 'checkbox', checked: e.labels.includes(label), 'aria-label': `${e.name}: ${label}`,
          onchange: (ev: Event) => {
            const on = (ev.target as HTMLInputElement).checked;
            e.labels = on ? [...new Set([...e.labels, label])] : e.labels.filter((l) => l !== label);
            void store.updateExample(e);
            renderTeachLabels();
            updateTrainButton();
          },
        }), ` ${label}`));
      }
    } else {
      const select = h('select', {
        'aria-label': `Class of ${e.name}`,
        onchange: (ev: Event) => {
          const v = (ev.target as HTMLSelectElement).value;
          e.labels = v ? [v] : [];
          void store.updateExample(e);
          renderTeachLabels();
          updateTrainButton();
        },
      }, h('option', { value: '', text: '(choose a class)' }));
      for (const label of teach.labels) {
        select.append(h('option', { value: label, text: label, selected: e.labels.length === 1 && e.labels[0] === label }));
      }
      editors.append(select);
    }
    grid.append(h('li', { class: 'card example', 'data-name': e.name, 'data-labels': e.labels.join(',') },
      h('img', { src: e.url, alt: e.name, width: 56, height: 56 }),
      h('div', { class: 'card-body' }, h('span', { class: 'card-title', text: e.name }), editors),
      h('button', { type: 'button', class: 'small remove', 'aria-label': `Remove the picture ${e.name}`, text: '×',
        title: 'Remove', onclick: () => void removeExamples([e.id]) })));
  }
  const n = examples.length;
  byId('examples-summary').textContent = n ? `${n} teaching picture${n === 1 ? '' : 's'}.` : 'No teaching pictures yet.';
  byId<HTMLButtonElement>('clear-examples').disabled = !n || training;
  updateTrainButton();
}

/** "What trains": the parameters each choice trains, from the layers the core says train for it. */
function renderPartHints(): void {
  if (!info) return;
  const layers = info.layers;
  // Half of a BatchNormalization layer's parameters are its moving statistics, which training
  // updates but no gradient step does (Keras counts them as non-trainable).
  const params = (from: number) => layers.slice(from)
    .reduce((s, l) => s + (l.type === 'BatchNormalization' ? l.params / 2 : l.params), 0);
  for (const [part, from] of Object.entries(info.trainableFrom)) {
    const el = document.querySelector<HTMLElement>(`[data-part="${part}"]`);
    if (el) el.textContent = from === null ? '' : `(${formatCount(params(from))} trainable parameters)`;
  }
}

function renderTeach(): void {
  document.querySelectorAll<HTMLInputElement>('input[name="mode"]').forEach((r) => { r.checked = r.value === teach.mode; });
  document.querySelectorAll<HTMLInputElement>('input[name="part"]').forEach((r) => { r.checked = r.value === teach.part; });
  byId<HTMLInputElement>('epochs').value = String(teach.epochs);
  byId<HTMLInputElement>('lr').value = String(teach.lr);
  byId<HTMLInputElement>('batch-size').value = String(teach.batchSize);
  byId<HTMLInputElement>('augment').checked = teach.augment;
  renderTeachLabels();
  renderExamples();
}

/** With no labels of its own yet, teaching starts from the model's labels. */
function syncTeachToModel(): void {
  if (!info || teach.labels.length) return;
  teach.labels = [...info.labels];
  teach.mode = info.head === 'sigmoid' ? 'multi' : 'single';
  renderTeach();
}

function problems(): string[] {
  const out: string[] = [];
  if (teach.mode === 'multi' && teach.labels.length < 1) out.push('add at least one label');
  if (teach.mode === 'single' && teach.labels.length < 2) out.push('add at least two classes');
  if (!examples.length) out.push('add pictures to learn from');
  if (teach.mode === 'single') {
    const unlabelled = examples.filter((e) => e.labels.length !== 1 || !teach.labels.includes(e.labels[0]));
    if (unlabelled.length) out.push(`choose a class for ${unlabelled.map((e) => e.name).slice(0, 3).join(', ')}` +
                                    `${unlabelled.length > 3 ? ` and ${unlabelled.length - 3} more` : ''}`);
  }
  return out;
}

function updateTrainButton(): void {
  const button = byId<HTMLButtonElement>('train');
  const p = problems();
  button.disabled = !ready || training || p.length > 0;
  button.title = p.length ? `To train: ${p.join('; ')}` : '';
  byId('train-hint').textContent = ready && !training && p.length ? `To train: ${p.join('; ')}.` : '';
}

async function addLabel(name: string): Promise<void> {
  const label = name.trim();
  if (!label) return;
  if (teach.labels.includes(label)) {
    showMessage(`The label "${label}" is already there.`);
    return;
  }
  teach.labels.push(label);
  if (teach.mode === 'single') targetLabels.clear();
  targetLabels.add(label);
  renderTeach();
  await saveTeach();
}

async function removeLabel(label: string): Promise<void> {
  teach.labels = teach.labels.filter((l) => l !== label);
  targetLabels.delete(label);
  for (const e of examples) {
    if (e.labels.includes(label)) {
      e.labels = e.labels.filter((l) => l !== label);
      await store.updateExample(e);
    }
  }
  renderTeach();
  await saveTeach();
}

/** The labels new teaching pictures get, as chosen now. */
function currentTargetLabels(): string[] {
  const labels = teach.labels.filter((l) => targetLabels.has(l));
  return teach.mode === 'single' ? labels.slice(0, 1) : labels;
}

async function addExamples(pictures: Picture[], labels: string[]): Promise<void> {
  if (!pictures.length) return;
  for (const p of pictures) {
    const stored: StoredExample = { blob: p.blob, name: p.name, labels: [...labels], addedAt: Date.now() };
    try {
      const id = await store.addExample(stored);
      examples.push({ ...stored, id, url: exampleUrl(stored) });
    } catch (e) {
      showMessage(`${p.name}: could not keep the picture (${errorText(e)})`);
    }
  }
  renderTeachLabels();
  renderExamples();
}

async function removeExamples(ids: number[]): Promise<void> {
  await store.deleteExamples(ids);
  for (const e of examples) if (ids.includes(e.id)) URL.revokeObjectURL(e.url);
  examples = examples.filter((e) => !ids.includes(e.id));
  renderTeachLabels();
  renderExamples();
}

async function teachFiles(files: File[]): Promise<void> {
  // The labels chosen when the pictures were given, whatever is chosen while they decode.
  const labels = currentTargetLabels();
  await whenReady;
  await addExamples(await picturesFrom(files), labels);
}

function readSettingsFromForm(): void {
  const num = (id: string, min: number, max: number, fallback: number, integer: boolean) => {
    const v = Number(byId<HTMLInputElement>(id).value);
    if (!Number.isFinite(v)) return fallback;
    const clamped = Math.min(max, Math.max(min, v));
    return integer ? Math.round(clamped) : clamped;
  };
  teach.epochs = num('epochs', 1, 200, 10, true);
  teach.lr = num('lr', 1e-5, 0.1, 1e-3, false);
  teach.batchSize = num('batch-size', 1, 128, 16, true);
  teach.augment = byId<HTMLInputElement>('augment').checked;
  const part = document.querySelector<HTMLInputElement>('input[name="part"]:checked')?.value;
  if (part === 'head' || part === 'block' || part === 'all') teach.part = part;
}

function sameLabels(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((l, i) => l === b[i]);
}

function setTraining(on: boolean): void {
  training = on;
  byId('train-progress').classList.toggle('active', on || byId<HTMLProgressElement>('train-progress').value > 0);
  byId<HTMLButtonElement>('stop').disabled = !on;
  for (const id of ['open-model', 'default-model', 'clear-examples', 'teach-pick', 'teach-camera']) {
    const b = byId<HTMLButtonElement>(id);
    if (on) b.disabled = true;
    else if (id === 'default-model') b.disabled = modelSource === 'default';
    else if (id === 'clear-examples') b.disabled = !examples.length;
    else b.disabled = false;
  }
  document.querySelectorAll<HTMLInputElement>('#teach fieldset input, #teach .settings input, #label-form input, #label-form button')
    .forEach((el) => { el.disabled = on; });
  updateTrainButton();
}

async function train(): Promise<void> {
  if (!info || !engineInfo || training) return;
  readSettingsFromForm();
  await saveTeach();
  const p = problems();
  if (p.length) {
    showMessage(`To train: ${p.join('; ')}.`);
    return;
  }
  const labels = [...teach.labels];
  const multi = teach.mode === 'multi';
  const logit = !multi && info.head === 'logit' && sameLabels(info.labels, labels);
  const sameHead = sameLabels(info.labels, labels) && (multi ? info.head === 'sigmoid' : info.head !== 'sigmoid');
  setTraining(true);
  const text = byId('train-text');
  const bar = byId<HTMLProgressElement>('train-progress');
  bar.value = 0;
  text.textContent = 'Preparing the pictures…';
  try {
    const pictures = await Promise.all(examples.map((e) => decodePicture(e.blob, e.name)));
    const trainExamples: TrainExample[] = pictures.map((pic, i) => {
      const has = examples[i].labels;
      const target = logit ? [has[0] === labels[1] ? 1 : 0] : labels.map((l) => (has.includes(l) ? 1 : 0));
      return { rgba: pic.rgba, width: pic.width, height: pic.height, target };
    });
    const comboSet = new Map<string, string[]>();
    for (const e of examples) if (e.labels.length) comboSet.set(comboKey(e.labels), [...e.labels].sort());

    // Predictions before, to compare with after.
    const compare: { name: string; url: string; picture: Picture }[] = results.length
      ? results.map((r) => ({ name: r.name, url: r.url, picture: r.picture }))
      : examples.slice(0, 12).map((e, i) => ({ name: e.name, url: e.url, picture: pictures[i] }));
    const beforeRows = await engine.classify(compare.map((c) => c.picture));
    const before = beforeRows.map((probs) => predictionNow(probs));
    results.forEach((r, i) => { r.before = before[i]; });

    const chart = await trainingChart();
    chart.reset();
    text.textContent = 'Training…';
    const augment = teach.augment ? engineInfo.augment : undefined;
    const result = await engine.train({
      labels, multiLabel: multi, newHead: !sameHead, part: teach.part,
      options: { lr: teach.lr, epochs: teach.epochs, batchSize: teach.batchSize, seed: 1, augment },
      examples: trainExamples,
      combinations: multi ? [...comboSet.values()] : [],
    }, (s) => {
      const done = (s.epoch - 1 + s.step / s.steps) / s.epochs;
      bar.value = done;
      chart.add(s.epoch - 1 + s.step / s.steps, s.loss, s.accuracy);
      text.textContent = `Epoch ${s.epoch}/${s.epochs}, batch ${s.step}/${s.steps}: loss ${s.loss.toFixed(4)}, ` +
        `accuracy ${s.accuracy.toFixed(3)} (${(s.elapsedMs / 1000).toFixed(1)} s)`;
    });
    if (result.reverted) {
      text.textContent = 'Stopped before the first batch: the model is unchanged.';
      results.forEach((r) => { r.before = null; });
      renderResults();
      lastTraining = { ...result, examples: trainExamples.length };
      return;
    }
    info = result.info;
    combos = combinationsOf(result.info);
    modelBytes = result.bytes;
    modelName = 'fine-tuned.tagnet';
    modelSource = 'fine-tuned';
    await store.saveModel({ bytes: result.bytes, name: modelName, source: modelSource, savedAt: Date.now() });
    renderModel();
    const afterRows = await engine.classify(compare.map((c) => c.picture));
    const after = afterRows.map((probs) => predictionNow(probs));
    if (results.length) afterRows.forEach((probs, i) => { results[i].prediction = predictionNow(probs); });
    renderResults();
    renderCompare(compare, before, after);
    bar.value = result.stopped ? bar.value : 1;
    text.textContent = `${result.stopped ? 'Stopped' : 'Trained'}: ${result.steps} batches in ` +
      `${(result.elapsedMs / 1000).toFixed(1)} s, ${formatCount(result.trainableParams)} parameters trained. ` +
      'The model is kept in this browser.';
    lastTraining = { ...result, examples: trainExamples.length };
  } catch (e) {
    if (e instanceof CancelledError) {
      text.textContent = 'Training cancelled: the model is unchanged.';
    } else {
      text.textContent = '';
      showMessage(`Training failed: ${errorText(e)}`);
    }
    results.forEach((r) => { r.before = null; });
    renderResults();
  } finally {
    clearTimeout(stopTimer);
    setTraining(false);
    byId<HTMLButtonElement>('download-model').disabled = false;
  }
}

function renderCompare(rows: { name: string; url: string }[], before: ReturnType<typeof predictionNow>[],
                       after: ReturnType<typeof predictionNow>[]): void {
  const body = byId('compare-rows');
  body.replaceChildren();
  rows.forEach((r, i) => {
    body.append(h('tr', { 'data-name': r.name },
      h('th', { scope: 'row' }, h('img', { src: r.url, alt: '', width: 40, height: 40 }), ` ${r.name}`),
      h('td', { text: summary(before[i]) }),
      h('td', { text: summary(after[i]) })));
  });
  byId('compare').hidden = false;
}

function stopTraining(): void {
  if (!training) return;
  byId('train-text').textContent = 'Stopping after this batch…';
  void engine.stop();
  // A batch takes well under a second; a worker that does not answer is ended.
  stopTimer = window.setTimeout(() => { if (training) engine.cancel(); }, 10_000);
}

// ---- sources: file pickers, drop zones, paste, camera ----

function wireDrop(zone: HTMLElement, input: HTMLInputElement, onFiles: (files: File[]) => Promise<void>): void {
  zone.addEventListener('dragover', (e) => {
    e.preventDefault();
    zone.classList.add('over');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    e.stopPropagation();
    zone.classList.remove('over');
    void onFiles(filesOf(e.dataTransfer));
  });
  zone.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      input.click();
    }
  });
  zone.addEventListener('click', () => input.click());
}

function wirePicker(button: HTMLButtonElement, input: HTMLInputElement, onFiles: (files: File[]) => Promise<void>): void {
  button.addEventListener('click', () => input.click());
  input.addEventListener('change', () => {
    const files = [...(input.files ?? [])];
    input.value = '';
    void onFiles(files);
  });
}

async function openCamera(target: 'classify' | 'teach'): Promise<void> {
  cameraTarget = target;
  const dialog = byId<HTMLDialogElement>('camera-dialog');
  byId('camera-target').textContent = target === 'classify'
    ? 'Pictures you take are classified.'
    : `Pictures you take are added for: ${currentTargetLabels().join(', ') || 'no label'}.`;
  dialog.showModal();
  try {
    await camera.start();
  } catch (e) {
    dialog.close();
    showMessage(`Camera unavailable: ${errorText(e)}`);
  }
}

let shots = 0;
async function takePicture(): Promise<void> {
  try {
    const labels = currentTargetLabels();
    const picture = await camera.capture(`camera-${++shots}.png`);
    if (cameraTarget === 'classify') await classifyPictures([picture]);
    else await addExamples([picture], labels);
  } catch (e) {
    showMessage(errorText(e));
  }
}

async function loadExampleButtons(): Promise<void> {
  const box = byId('example-buttons');
  try {
    const list = (await (await fetch(new URL('examples/index.json', document.baseURI))).json()) as
      { file: string; labels: string[] }[];
    for (const ex of list) {
      const url = new URL(`examples/${ex.file}`, document.baseURI).href;
      const text = ex.labels.join(' ');
      box.append(h('button', {
        type: 'button', class: 'example-button', 'data-file': ex.file, 'aria-label': `Classify the example ${text}`,
        onclick: async () => {
          try {
            const blob = await (await fetch(url)).blob();
            const picture = await decodePicture(blob, ex.file);
            await whenReady;
            await classifyPictures([picture]);
          } catch (e) {
            showMessage(`${ex.file}: ${errorText(e)}`);
          }
        },
      }, h('img', { src: url, alt: '', width: 48, height: 48 }), h('span', { text })));
    }
  } catch (e) {
    box.append(h('span', { class: 'hint', text: `no examples (${errorText(e)})` }));
  }
}

function wireControls(): void {
  byId('open-model').addEventListener('click', () => byId<HTMLInputElement>('model-file').click());
  byId<HTMLInputElement>('model-file').addEventListener('change', (e) => {
    const input = e.target as HTMLInputElement;
    const file = input.files?.[0];
    input.value = '';
    if (file) void openModelFile(file);
  });
  byId('download-model').addEventListener('click', () => { if (modelBytes) download(modelBytes, modelName); });
  byId('download-trained').addEventListener('click', () => { if (modelBytes) download(modelBytes, modelName); });
  byId('default-model').addEventListener('click', () => void busy('Loading the default model…', async (progress) => {
    try {
      await useModel(await defaultModelBytes(progress), 'default.tagnet', 'default', true);
    } catch (e) {
      if (!(e instanceof CancelledError)) showMessage(`The default model did not load: ${errorText(e)}`);
    }
  }, true));

  wirePicker(byId('classify-pick'), byId('classify-files'), classifyFiles);
  wireDrop(byId('classify-drop'), byId('classify-files'), classifyFiles);
  wirePicker(byId('teach-pick'), byId('teach-files'), teachFiles);
  wireDrop(byId('teach-drop'), byId('teach-files'), teachFiles);
  byId('classify-camera').addEventListener('click', () => void openCamera('classify'));
  byId('teach-camera').addEventListener('click', () => void openCamera('teach'));
  byId('camera-take').addEventListener('click', () => void takePicture());
  byId('camera-close').addEventListener('click', () => byId<HTMLDialogElement>('camera-dialog').close());
  byId('camera-dialog').addEventListener('close', () => camera.stop());

  // Paste: into the teaching pictures when focus is in that section, else classified.
  document.addEventListener('paste', (e) => {
    const files = filesOf(e.clipboardData);
    if (!files.length) return;
    e.preventDefault();
    const inTeach = byId('teach').contains(document.activeElement);
    void (inTeach ? teachFiles(files) : classifyFiles(files));
  });
  // Files dropped outside the drop zones: models open, pictures are classified; the browser
  // must not navigate away to show them.
  document.addEventListener('dragover', (e) => e.preventDefault());
  document.addEventListener('drop', (e) => {
    e.preventDefault();
    void classifyFiles(filesOf(e.dataTransfer));
  });

  byId<HTMLInputElement>('threshold').addEventListener('input', (e) => {
    setThreshold(Number((e.target as HTMLInputElement).value));
    renderResults();
  });
  byId<HTMLInputElement>('threshold').addEventListener('change', () => void saveTeach());
  byId('clear-results').addEventListener('click', () => {
    results.forEach((r) => URL.revokeObjectURL(r.url));
    results = [];
    renderResults();
  });

  byId('label-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const input = byId<HTMLInputElement>('label-name');
    void addLabel(input.value);
    input.value = '';
    input.focus();
  });
  document.querySelectorAll<HTMLInputElement>('input[name="mode"]').forEach((r) => r.addEventListener('change', () => {
    if (!r.checked) return;
    teach.mode = r.value === 'single' ? 'single' : 'multi';
    if (teach.mode === 'single' && targetLabels.size > 1) {
      const first = teach.labels.find((l) => targetLabels.has(l));
      targetLabels.clear();
      if (first) targetLabels.add(first);
    }
    renderTeach();
    void saveTeach();
  }));
  for (const id of ['epochs', 'lr', 'batch-size', 'augment']) {
    byId(id).addEventListener('change', () => { readSettingsFromForm(); void saveTeach(); });
  }
  document.querySelectorAll<HTMLInputElement>('input[name="part"]').forEach((r) => r.addEventListener('change', () => {
    // Pretrained convolutions need gentler steps than a new head: each choice brings its own
    // learning rate (still editable).
    if (r.checked) byId<HTMLInputElement>('lr').value = String(LEARNING_RATES[r.value as TrainPart] ?? 1e-3);
    readSettingsFromForm();
    void saveTeach();
  }));
  byId('train').addEventListener('click', () => void train());
  byId('stop').addEventListener('click', stopTraining);
  byId('clear-examples').addEventListener('click', () => void removeExamples(examples.map((e) => e.id)));
  byId('loading-cancel').addEventListener('click', () => engine.cancel());
}

// ---- start-up ----

function describeEngine(r: InitResult): string {
  if (r.variant === 'simd-threads') {
    return `Engine: WebAssembly SIMD with ${r.threads} threads (${r.engine}).`;
  }
  return `Engine: WebAssembly SIMD on one thread (${r.engine}). Threads need a cross-origin isolated ` +
    'page, which this one is not: serve it with tagnet serve, or from a host where its service worker can run.';
}

async function restoreTeach(): Promise<void> {
  Object.assign(teach, await store.settings());
  if (teach.labels.length) targetLabels.add(teach.labels[0]);
  const stored = await store.examples();
  examples = stored.map((e) => ({ ...e, id: e.id as number, url: exampleUrl(e) }));
  renderTeach();
}

async function start(): Promise<void> {
  wireControls();
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
  engine = new EngineBridge(new URL('wasm/', document.baseURI));
  const started = engine.init().then((r) => {
    engineInfo = r;
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
    store = await Store.open();
    const stored = await store.model().catch(() => undefined);
    timings.storeReady = performance.now();
    const bytes = stored ? Promise.resolve(stored.bytes) : fallback;
    void bytes.then(() => { timings.modelBytes = performance.now(); }, () => undefined);
    await started;
    progress(null, 'Loading the model…');
    try {
      await useModel(await bytes, stored?.name ?? 'default.tagnet', stored?.source ?? 'default', false);
    } catch (e) {
      if (!stored) throw e;
      showMessage(`The model kept in this browser did not load (${errorText(e)}); using the default model.`);
      await useModel(await fallback, 'default.tagnet', 'default', true);
    }
    timings.modelReady = performance.now();
  });
  if (!store.persistent) showMessage('This browser does not keep data for this page: teaching pictures are lost on reload.', 'info');
  await restoreTeach();
  syncTeachToModel();
  ready = true;
  markReady();
  for (const id of ['classify-pick', 'classify-camera', 'download-model']) byId<HTMLButtonElement>(id).disabled = false;
  updateTrainButton();
  timings.ready = performance.now();
  document.body.dataset.ready = 'true';
}

start().catch((e) => {
  byId('engine-status').textContent = `The engine did not start: ${errorText(e)}`;
  document.body.dataset.failed = 'true';
  if (!(e instanceof CancelledError)) showMessage(`The page could not start: ${errorText(e)}`);
});
