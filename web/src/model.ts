// The model in use: the default one, a file the user opens, or one fine-tuned here; what it is,
// and keeping it in IndexedDB with the model before it. A model trained here is a trial until
// the user keeps it; "Go back" and "Use the previous model" swap in the previous one, bit for bit.
import { CancelledError } from './bridge';
import { reclassifyAll, setThreshold } from './classify';
import { byId, download, formatBytes, formatCount, h, listNames, plural } from './dom';
import { looksLikeModel } from './images';
import { busy, clearErrors, errorText, type Progress, showError, showInfo } from './messages';
import { combinationsOf } from './predict';
import type { LoadedModel } from './protocol';
import { type ModelSource, state, store } from './state';
import type { StoredModel } from './store';
import { renderPartHints } from './teach';

async function fetchWithProgress(url: string, progress: Progress): Promise<Uint8Array> {
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

export async function defaultModelBytes(progress: Progress): Promise<Uint8Array> {
  return fetchWithProgress(new URL('models/default.tagnet', document.baseURI).href, progress);
}

/** Who the model in use is, in words: "The default model", "fine-tuned.tagnet". */
function modelWho(): string {
  if (state.modelSource === 'default') return 'The default model';
  if (state.modelSource === 'fine-tuned') return state.trial ? 'The model trained just now (not kept yet)' : 'The model trained here';
  return state.modelName;
}

/** One sentence on what the model in use knows, from its labels (and its description, when it has one). */
function renderSummary(info: LoadedModel): void {
  const description = typeof info.metadata.description === 'string' ? info.metadata.description : '';
  const what = description || plural(info.labels.length, 'label');
  byId('model-summary').textContent =
    `${modelWho()} knows ${what}: ${listNames(info.labels)} — other pictures get guesses.`;
}

function renderLayers(info: LoadedModel): void {
  byId('model-layers').replaceChildren(...info.layers.map((l) => h('tr', {},
    h('td', { text: `${l.name} (${l.type})` }),
    h('td', { text: l.outputShape.join('×') }),
    h('td', { class: 'number', text: formatCount(l.params) }))));
}

export function renderModel(): void {
  const { info, modelBytes } = state;
  const dl = byId('model-info');
  dl.replaceChildren();
  const list = byId('model-labels');
  list.replaceChildren();
  if (!info) return;
  renderSummary(info);
  renderLayers(info);
  byId('model-line').textContent = `In use: ${state.modelName}${modelBytes ? ` (${formatBytes(modelBytes.length)})` : ''}` +
    `, ${plural(info.labels.length, 'label')}, ${info.head === 'sigmoid' ? 'several per picture' : 'one per picture'}.`;
  const [H, W, C] = info.inputShape;
  const kind = info.head === 'sigmoid' ? 'multi-label (sigmoid)' : info.head === 'softmax'
    ? 'single-label (softmax)' : 'two classes (one logit)';
  const rows: [string, string][] = [
    ['File', `${state.modelName}${modelBytes ? ` (${formatBytes(modelBytes.length)})` : ''}`],
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
  setThreshold(state.teach.threshold ?? mdThreshold);
  void renderPartHints();
  renderChoice();
}

/** Keep this model / Go back after a training; Use the previous model otherwise. */
export function renderChoice(): void {
  const { previous, trial, training } = state;
  if (state.info) renderSummary(state.info);
  byId('decision').hidden = !trial;
  if (previous) byId('decision-previous').textContent = previous.name;
  const usePrevious = byId<HTMLButtonElement>('use-previous');
  usePrevious.hidden = !previous || trial;
  usePrevious.textContent = previous ? `Use the previous model (${previous.name})` : '';
  for (const id of ['keep-model', 'go-back']) byId<HTMLButtonElement>(id).disabled = training;
  usePrevious.disabled = training;
  // The table's download is the trained model's: gone with it.
  byId('download-trained').hidden = state.modelSource !== 'fine-tuned';
  byId<HTMLButtonElement>('default-model').disabled = training || (state.modelSource === 'default' && !trial);
}

/** Makes the engine's current model the page's (without showing it). */
export function setCurrentModel(info: LoadedModel, bytes: Uint8Array, name: string, source: ModelSource): void {
  state.info = info;
  state.combos = combinationsOf(info);
  state.modelBytes = bytes;
  state.modelName = name;
  state.modelSource = source;
}

/** The model in use, as IndexedDB keeps it. */
function inUse(): StoredModel | null {
  const { modelBytes: bytes, modelName: name, modelSource: source, trial } = state;
  return bytes ? { bytes, name, source, trial, savedAt: Date.now() } : null;
}

/** Keeps the model in use (the default one unless on trial is fetched again instead) and the previous one. */
async function keepModels(): Promise<void> {
  const current = inUse();
  if (!current || (current.source === 'default' && !current.trial)) await store().clearModel();
  else await store().saveModel(current);
  await store().savePreviousModel(state.previous);
}

/** Makes `bytes` the page's model, without keeping it. Throws (keeping the current model) when they are not one. */
export async function useModel(bytes: Uint8Array, name: string, source: ModelSource): Promise<void> {
  const t0 = performance.now();
  const info = await state.engine.load(bytes);
  state.timings.lastLoadMs = performance.now() - t0;
  setCurrentModel(info, bytes, name, source);
  clearErrors('model');
  renderModel();
  await reclassifyAll();
}

/**
 * Replaces the model in use by the user's choice, and keeps it. The model it replaces becomes the
 * previous one, unless it was a trial not kept: then the previous one stays the last kept.
 */
async function switchModel(bytes: Uint8Array, name: string, source: ModelSource): Promise<void> {
  const before = inUse();
  const { trial, previous } = state;
  if (!trial && before) state.previous = before;
  state.trial = false;
  try {
    await useModel(bytes, name, source);
  } catch (e) {
    state.previous = previous;
    state.trial = trial;
    renderChoice();
    throw e;
  }
  await keepModels();
}

/** The engine's model, just trained from `before`, in use on trial. */
export async function tryTrainedModel(info: LoadedModel, bytes: Uint8Array, before: StoredModel): Promise<void> {
  if (!state.trial) state.previous = { ...before, trial: false };
  setCurrentModel(info, bytes, 'fine-tuned.tagnet', 'fine-tuned');
  state.trial = true;
  renderModel();
  await keepModels();
}

/** The model in use before training, as it is now (for tryTrainedModel). */
export function modelBeforeTraining(): StoredModel | null {
  return inUse();
}

async function keepTrial(): Promise<void> {
  state.trial = false;
  renderChoice();
  await keepModels();
}

/** Go back / Use the previous model: the previous model and the one in use change places. */
async function usePrevious(): Promise<void> {
  const { previous } = state;
  const current = inUse();
  if (!previous || !current) return;
  const trial = state.trial;
  await busy(`Loading ${previous.name}…`, async () => {
    state.previous = { ...current, trial: false };
    state.trial = false;
    state.results.forEach((r) => { r.before = null; });
    try {
      await useModel(previous.bytes, previous.name, previous.source);
    } catch (e) {
      state.previous = previous;
      state.trial = trial;
      renderChoice();
      if (!(e instanceof CancelledError)) showError(`${previous.name} did not load: ${errorText(e)}`, 'model');
      return;
    }
    await keepModels();
  }, true);
}

function modelErrorText(name: string, e: unknown): string {
  const detail = errorText(e).replace(/^model bytes: /, '');
  return /^not a tagnet model/.test(detail) ? `${name}: ${detail}` : `${name}: not a tagnet model: ${detail}`;
}

/** An ONNX file (PyTorch, Keras through tf2onnx) opens as the .tagnet model the module makes of it. */
export function isOnnxFile(name: string): boolean {
  return /\.onnx$/i.test(name);
}

export async function openModelFile(file: File): Promise<void> {
  clearErrors('model');
  await busy(`Opening ${file.name}…`, async () => {
    let bytes: Uint8Array = new Uint8Array(await file.arrayBuffer());
    let name = file.name;
    if (isOnnxFile(name)) {
      try {
        bytes = await state.engine.importOnnx(bytes, name);
      } catch (e) {
        if (!(e instanceof CancelledError)) showError(errorText(e), 'model');   // starts with the file's name
        return;
      }
      name = name.replace(/\.onnx$/i, '.tagnet');
    } else if (!looksLikeModel(bytes)) {
      showError(`${file.name}: not a tagnet model (it does not start like a .tagnet file)`, 'model');
      return;
    }
    try {
      await switchModel(bytes, name, 'file');
      showInfo(`Opened ${file.name}.`);
    } catch (e) {
      if (e instanceof CancelledError) return;
      showError(modelErrorText(file.name, e), 'model');
    }
  }, true);
}

export function wireModel(): void {
  const downloadModel = () => { if (state.modelBytes) download(state.modelBytes, state.modelName); };
  byId('open-model').addEventListener('click', () => byId<HTMLInputElement>('model-file').click());
  byId<HTMLInputElement>('model-file').addEventListener('change', (e) => {
    const input = e.target as HTMLInputElement;
    const file = input.files?.[0];
    input.value = '';
    if (file) void openModelFile(file);
  });
  byId('download-model').addEventListener('click', downloadModel);
  byId('keep-model').addEventListener('click', () => void keepTrial());
  byId('go-back').addEventListener('click', () => void usePrevious());
  byId('use-previous').addEventListener('click', () => void usePrevious());
  byId('download-trained').addEventListener('click', downloadModel);
  byId('default-model').addEventListener('click', () => void busy('Loading the default model…', async (progress) => {
    try {
      await switchModel(await defaultModelBytes(progress), 'default.tagnet', 'default');
    } catch (e) {
      if (!(e instanceof CancelledError)) showError(`The default model did not load: ${errorText(e)}`, 'model');
    }
  }, true));
}
