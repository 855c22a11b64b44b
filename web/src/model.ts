// The model in use: the default one, a file the user opens, or one fine-tuned here; what it is,
// and keeping it in IndexedDB.
import { CancelledError } from './bridge';
import { reclassifyAll, setThreshold } from './classify';
import { byId, download, formatBytes, formatCount, h } from './dom';
import { busy, clearErrors, errorText, type Progress, showError, showInfo } from './messages';
import { looksLikeModel } from './modelfile';
import { combinationsOf } from './predict';
import type { LoadedModel } from './protocol';
import { type ModelSource, state, store } from './state';
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

export function renderModel(): void {
  const { info, modelBytes } = state;
  const dl = byId('model-info');
  dl.replaceChildren();
  const list = byId('model-labels');
  list.replaceChildren();
  if (!info) return;
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
}

/** Makes the engine's current model the page's (without showing it). */
export function setCurrentModel(info: LoadedModel, bytes: Uint8Array, name: string, source: ModelSource): void {
  state.info = info;
  state.combos = combinationsOf(info);
  state.modelBytes = bytes;
  state.modelName = name;
  state.modelSource = source;
}

/** Makes `bytes` the page's model. Throws (keeping the current model) when they are not one. */
export async function useModel(bytes: Uint8Array, name: string, source: ModelSource, save: boolean): Promise<void> {
  const t0 = performance.now();
  const info = await state.engine.load(bytes);
  state.timings.lastLoadMs = performance.now() - t0;
  setCurrentModel(info, bytes, name, source);
  clearErrors('model');
  renderModel();
  byId<HTMLButtonElement>('default-model').disabled = source === 'default';
  if (save) {
    if (source === 'default') await store().clearModel();
    else await store().saveModel({ bytes, name, source, savedAt: Date.now() });
  }
  await reclassifyAll();
}

function modelErrorText(name: string, e: unknown): string {
  const detail = errorText(e).replace(/^model bytes: /, '');
  return /^not a tagnet model/.test(detail) ? `${name}: ${detail}` : `${name}: not a tagnet model: ${detail}`;
}

export async function openModelFile(file: File): Promise<void> {
  clearErrors('model');
  await busy(`Opening ${file.name}…`, async () => {
    const bytes = new Uint8Array(await file.arrayBuffer());
    if (!looksLikeModel(bytes)) {
      showError(`${file.name}: not a tagnet model (it does not start like a .tagnet file)`, 'model');
      return;
    }
    try {
      await useModel(bytes, file.name, 'file', true);
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
  byId('download-trained').addEventListener('click', downloadModel);
  byId('default-model').addEventListener('click', () => void busy('Loading the default model…', async (progress) => {
    try {
      await useModel(await defaultModelBytes(progress), 'default.tagnet', 'default', true);
    } catch (e) {
      if (!(e instanceof CancelledError)) showError(`The default model did not load: ${errorText(e)}`, 'model');
    }
  }, true));
}
