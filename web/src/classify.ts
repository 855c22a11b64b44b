// Classifying: the results, one card per picture with every label's probability, and the
// threshold that decides which labels count as predicted.
import { CancelledError } from './bridge';
import { byId, h } from './dom';
import type { Picture } from './images';
import { busy, errorText, showError } from './messages';
import type { ClassifyResult } from './protocol';
import { isUnseenCombination, percent, predictedIndices, unseenNote } from './predict';
import { type Prediction, type ResultItem, state } from './state';
import { saveTeach } from './teach';

export function predictionNow(probs: Float32Array, novelty = -1): Prediction {
  if (!state.info) throw new Error('no model');
  return { probs, labels: state.info.labels, head: state.info.head, combos: state.combos, novelty };
}

export function setThreshold(t: number): void {
  state.threshold = t;
  const slider = byId<HTMLInputElement>('threshold');
  slider.value = String(t);
  byId('threshold-value').textContent = t.toFixed(2);
}

export async function classifyPictures(pictures: Picture[]): Promise<void> {
  if (!pictures.length) return;
  const { engine, timings } = state;
  const items: ResultItem[] = pictures.map((picture) => ({
    id: state.nextResultId++, name: picture.name, url: URL.createObjectURL(picture.blob), picture,
    prediction: null, before: null,
  }));
  state.results.push(...items);
  renderResults();
  try {
    const t0 = performance.now();
    const what = pictures.length === 1 ? pictures[0].name : `${pictures.length} pictures`;
    const rows = await busy(`Classifying ${what}…`, async (progress) => {
      // In parts, to show progress on long lists.
      const out: ClassifyResult = { rows: [], novelty: [] };
      for (let i = 0; i < pictures.length; i += 32) {
        const part = await engine.classifyWithNovelty(pictures.slice(i, i + 32));
        out.rows.push(...part.rows);
        out.novelty.push(...part.novelty);
        if (pictures.length > 32) progress(out.rows.length / pictures.length, `Classifying ${what}: ${out.rows.length} done…`);
      }
      return out;
    }, pictures.length > 8);
    timings.lastClassifyMs = performance.now() - t0;
    rows.rows.forEach((probs, i) => { items[i].prediction = predictionNow(probs, rows.novelty[i]); });
    if (timings.firstClassification === undefined) timings.firstClassification = performance.now();
  } catch (e) {
    state.results = state.results.filter((r) => !items.includes(r));
    items.forEach((r) => URL.revokeObjectURL(r.url));
    if (!(e instanceof CancelledError)) showError(`Classification failed: ${errorText(e)}`, 'classify');
  }
  renderResults();
}

export async function reclassifyAll(): Promise<void> {
  if (!state.results.length || !state.info) return;
  const { rows, novelty } = await state.engine.classifyWithNovelty(state.results.map((r) => r.picture));
  rows.forEach((probs, i) => { state.results[i].prediction = predictionNow(probs, novelty[i]); });
  renderResults();
}

function predictedLabels(p: Prediction): string[] {
  return predictedIndices(p.probs, p.head, state.threshold).map((i) => p.labels[i]);
}

/** "jeans 99.20%, blue 97.01%": the predicted labels with their probabilities. */
export function summary(p: Prediction): string {
  const idx = predictedIndices(p.probs, p.head, state.threshold);
  if (!idx.length) return 'no label above the threshold';
  return idx.map((i) => `${p.labels[i]} ${percent(p.probs[i])}`).join(', ');
}

export function renderProbabilities(p: Prediction): HTMLElement {
  const chosen = new Set(predictedIndices(p.probs, p.head, state.threshold));
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

export function renderResults(): void {
  const grid = byId('results');
  grid.replaceChildren();
  for (const r of state.results) {
    const body = h('div', { class: 'card-body' }, h('h3', { class: 'card-title', text: r.name }));
    const card = h('li', { class: 'card', 'data-name': r.name },
      h('img', { src: r.url, alt: r.name, width: 96, height: 96 }), body);
    if (!r.prediction) {
      body.append(h('p', { class: 'hint', text: 'classifying…' }));
    } else {
      const predicted = predictedLabels(r.prediction);
      card.dataset.predicted = predicted.join(',');
      body.append(renderProbabilities(r.prediction));
      if ((r.prediction.novelty ?? -1) > 1) {
        card.dataset.unfamiliar = 'true';
        body.append(h('p', { class: 'note unfamiliar',
          text: 'This looks unlike the pictures this model learnt from: its labels are guesses.' }));
      } else if (isUnseenCombination(predicted, r.prediction.head, r.prediction.combos)) {
        card.dataset.unseen = 'true';
        body.append(h('p', { class: 'note', text: unseenNote(predicted) }));
      }
      if (r.before) body.append(h('p', { class: 'before', text: `Before training: ${summary(r.before)}` }));
    }
    grid.append(card);
  }
  byId<HTMLButtonElement>('clear-results').disabled = !state.results.length;
}

export function wireClassify(): void {
  byId<HTMLInputElement>('threshold').addEventListener('input', (e) => {
    setThreshold(Number((e.target as HTMLInputElement).value));
    renderResults();
  });
  byId<HTMLInputElement>('threshold').addEventListener('change', () => void saveTeach());
  byId('clear-results').addEventListener('click', () => {
    state.results.forEach((r) => URL.revokeObjectURL(r.url));
    state.results = [];
    renderResults();
  });
}
