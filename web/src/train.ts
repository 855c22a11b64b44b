// Training on the teaching pictures: progress and the live chart, Stop, and the table of the
// predictions before and after on a sample of the teaching pictures balanced across the cards.
// The chart and the table of the last training stay in IndexedDB and show again after a reload.
import { CancelledError } from './bridge';
import type { TrainingChart } from './chart';
import { predictionNow, renderResults, summary } from './classify';
import { byId, formatCount, h } from './dom';
import { decodePicture, type Picture } from './images';
import { clearErrors, errorText, showError } from './messages';
import { modelBeforeTraining, renderChoice, tryTrainedModel } from './model';
import { comboKey } from './predict';
import type { TrainExample } from './protocol';
import type { TeachReport } from './tagnet-types';
import { type Prediction, state, store } from './state';
import type { StoredRun } from './store';
import { problems, readSettingsFromForm, saveTeach, type TrainPlan, trainPlan, updateTrainButton } from './teach';

// uPlot loads with the first training, not with the page.
async function trainingChart(): Promise<TrainingChart> {
  if (!state.chart) {
    const { TrainingChart: Chart } = await import('./chart');
    state.chart = new Chart(byId('chart'));
  }
  return state.chart;
}

function setTraining(on: boolean): void {
  state.training = on;
  byId('train-progress').classList.toggle('active', on || byId<HTMLProgressElement>('train-progress').value > 0);
  byId<HTMLButtonElement>('stop').disabled = !on;
  byId<HTMLButtonElement>('open-model').disabled = on;
  byId<HTMLButtonElement>('clear-teach').disabled = on || !state.teach.cards.length;
  renderChoice();
  // The cards and settings stay as they are until the training ends.
  for (const id of ['cards', 'new-label-form', 'add-none', 'teach-mode', 'train-settings']) byId(id).inert = on;
  updateTrainButton();
}

async function train(): Promise<void> {
  const { info, engineInfo, engine, teach } = state;
  if (!info || !engineInfo || state.training) return;
  readSettingsFromForm();
  await saveTeach();
  clearErrors('training');
  const p = problems();
  if (p.length) {
    showError(`To train: ${p.join('; ')}.`, 'training');
    return;
  }
  const previous = modelBeforeTraining();
  if (!previous) return;
  const plan = trainPlan();
  const { labels, multi, logit } = plan;
  setTraining(true);
  const text = byId('train-text');
  const bar = byId<HTMLProgressElement>('train-progress');
  bar.value = 0;
  text.textContent = 'Preparing the pictures…';
  try {
    const pictures = await Promise.all(plan.pictures.map((e) => decodePicture(e.blob, e.name)));
    const trainExamples: TrainExample[] = pictures.map((pic, i) => {
      const has = plan.targets[i];
      const target = logit ? [has[0] === labels[1] ? 1 : 0] : labels.map((l) => (has.includes(l) ? 1 : 0));
      return { rgba: pic.rgba, width: pic.width, height: pic.height, target };
    });
    const comboSet = new Map<string, string[]>();
    for (const t of plan.targets) if (t.length) comboSet.set(comboKey(t), [...t].sort());

    // Predictions before, to compare with after: the classified pictures and the sample.
    const sample = compareSample(plan, pictures);
    const compare = [...state.results.map((r) => r.picture), ...sample.map((c) => c.picture)];
    const before = await predictions(compare);
    state.results.forEach((r, i) => { r.before = before[i]; });

    await store().saveLastRun(null);
    byId('compare').hidden = true;
    byId('teach-report').hidden = true;
    const chart = await trainingChart();
    chart.reset();
    if (usesTeachRecipe()) {
      // The head alone: the core's few-picture recipe, which keeps the model's own labels.
      const result = await engine.teach({
        labels, onePerPicture: !multi, seed: 1,
        pictures: pictures.map((pic, i) => ({ rgba: pic.rgba, width: pic.width, height: pic.height,
                                              labels: plan.targets[i] })),
      }, (p) => {
        bar.value = p.phase === 'features' ? 0.9 * p.done / Math.max(1, p.total) : p.phase === 'training' ? 0.9 : 1;
        text.textContent = p.phase === 'features' ? `Reading the pictures: ${p.done} of ${p.total}…`
          : 'Training the new labels…';
      });
      if (result.stopped) {
        text.textContent = 'Stopped: the model is unchanged.';
        state.results.forEach((r) => { r.before = null; });
        renderResults();
        return;
      }
      await tryTrainedModel(result.info, result.bytes, previous);
      const after = await predictions(compare);
      state.results.forEach((r, i) => { r.prediction = after[i]; });
      renderResults();
      bar.value = 1;
      const n = state.results.length;
      const run: StoredRun = {
        ...chart.series,
        rows: sample.map((c, i) => ({ name: c.name, blob: c.picture.blob, taught: c.taught,
                                      before: summary(before[n + i]), after: summary(after[n + i]) })),
        text: `Taught ${labels.join(', ')} from ${pictures.length} pictures in ${(result.elapsedMs / 1000).toFixed(1)} s, ` +
          `${formatCount(result.report.trainedParams)} parameters trained; the model's other labels are unchanged.`,
        report: result.report,
      };
      showRun(run);
      state.lastTeach = { ...result, examples: pictures.length };
      await store().saveLastRun(run);
      return;
    }
    byId('chart').hidden = false;
    text.textContent = 'Training…';
    const augment = teach.augment ? engineInfo.augment : undefined;
    const result = await engine.train({
      labels, multiLabel: multi, newHead: plan.newHead, part: teach.part,
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
      state.results.forEach((r) => { r.before = null; });
      renderResults();
      state.lastTraining = { ...result, examples: trainExamples.length };
      return;
    }
    await tryTrainedModel(result.info, result.bytes, previous);
    const after = await predictions(compare);
    state.results.forEach((r, i) => { r.prediction = after[i]; });
    renderResults();
    bar.value = result.stopped ? bar.value : 1;
    const n = state.results.length;
    const run: StoredRun = {
      ...chart.series,
      rows: sample.map((c, i) => ({ name: c.name, blob: c.picture.blob, taught: c.taught,
                                    before: summary(before[n + i]), after: summary(after[n + i]) })),
      text: `${result.stopped ? 'Stopped' : 'Trained'}: ${result.steps} batches in ` +
        `${(result.elapsedMs / 1000).toFixed(1)} s, ${formatCount(result.trainableParams)} parameters trained.`,
    };
    showRun(run);
    state.lastTraining = { ...result, examples: trainExamples.length };
    await store().saveLastRun(run);
  } catch (e) {
    if (e instanceof CancelledError) {
      text.textContent = 'Training cancelled: the model is unchanged.';
    } else {
      text.textContent = '';
      showError(`Training failed: ${errorText(e)}`, 'training');
    }
    state.results.forEach((r) => { r.before = null; });
    renderResults();
  } finally {
    clearTimeout(state.stopTimer);
    setTraining(false);
    byId<HTMLButtonElement>('download-model').disabled = false;
  }
}

/** Whether this training uses the few-picture recipe: the head alone, on a head it can extend. */
export function usesTeachRecipe(): boolean {
  return state.teach.part === 'head' && state.info !== null && state.info.head !== 'logit';
}

function percentOf(right: number, total: number): string {
  return `${Math.round((100 * right) / total)}%`;
}

/** Held-out accuracy per label, and the warnings, of a teaching. */
function showReport(report: TeachReport | undefined): void {
  const box = byId('teach-report');
  box.hidden = !report;
  if (!report) return;
  const scored = report.labels.filter((l) => l.heldOut > 0);
  const rows = report.labels.map((l) => h('tr', {},
    h('th', { scope: 'row', text: l.name }),
    h('td', { text: String(l.pictures) }),
    h('td', { text: l.heldOut ? `${l.right} of ${l.heldOut} (${percentOf(l.right, l.heldOut)})` : 'none kept aside' })));
  const summaryLine = report.heldOut
    ? `On pictures kept aside while it learnt: ${report.right} of ${report.heldOut} right ` +
      `(${percentOf(report.right, report.heldOut)}; guessing would get ${Math.round(100 * report.chance)}%).`
    : 'No pictures could be kept aside to check it: every label needs at least 4.';
  box.replaceChildren(
    h('p', { class: 'report-summary', text: summaryLine }),
    ...(scored.length || report.labels.length ? [h('table', { class: 'report-table' },
      h('thead', {}, h('tr', {}, h('th', { scope: 'col', text: 'Label' }), h('th', { scope: 'col', text: 'Pictures' }),
        h('th', { scope: 'col', text: 'Kept aside, right' }))),
      h('tbody', {}, ...rows))] : []),
    ...report.warnings.map((w) => h('p', { class: 'report-warning', role: 'note', text: w })));
}

const COMPARE_ROWS = 12;

/** Up to `n` items, as many from each group as it has (so groups share alike), spread over each group. */
export function balancedSample<T>(groups: readonly T[][], n: number): T[] {
  const take = groups.map(() => 0);
  for (let left = n, more = true; left > 0 && more;) {
    more = false;
    groups.forEach((g, i) => {
      if (left > 0 && take[i] < g.length) {
        ++take[i];
        --left;
        more = true;
      }
    });
  }
  return groups.flatMap((g, i) => Array.from({ length: take[i] }, (_, k) => g[Math.floor((k + 0.5) * g.length / take[i])]));
}

interface CompareItem {
  name: string;
  picture: Picture;
  /** The labels it was taught with. */
  taught: string;
}

/** The teaching pictures of the before/after table: a few of each card. */
function compareSample(plan: TrainPlan, pictures: Picture[]): CompareItem[] {
  const groups = state.teach.cards.map((c) => plan.pictures.flatMap((e, i) => (e.card === c.id ? [i] : [])));
  return balancedSample(groups, COMPARE_ROWS).map((i) => ({
    name: plan.pictures[i].name, picture: pictures[i], taught: plan.targets[i].join(', ') || 'no label',
  }));
}

async function predictions(pictures: Picture[]): Promise<Prediction[]> {
  return pictures.length ? (await state.engine.classify(pictures)).map(predictionNow) : [];
}

/** The chart, the status line and the before/after table of a training. */
function showRun(run: StoredRun): void {
  const body = byId('compare-rows');
  body.querySelectorAll('img').forEach((img) => URL.revokeObjectURL(img.src));
  // Each label with its probability stays on one line, however narrow the table.
  const cell = (text: string) => h('td', {}, ...text.split(', ').flatMap((part, i) =>
    [i ? ', ' : '', part.endsWith('%') ? h('span', { class: 'prediction', text: part }) : part]));
  body.replaceChildren(...run.rows.map((r) => h('tr', { 'data-name': r.name },
    h('th', { scope: 'row' }, h('img', { src: URL.createObjectURL(r.blob), alt: r.name, title: r.name, width: 40, height: 40 }),
      h('span', { class: 'picture-name', text: ` ${r.name}` })),
    h('td', { text: r.taught }),
    cell(r.before),
    cell(r.after))));
  byId('compare').hidden = run.rows.length === 0;
  byId('train-text').textContent = run.text;
  byId('chart').hidden = run.report !== undefined;   // a teaching has no epochs to draw
  showReport(run.report);
}

/** The last training's chart and table, kept from an earlier visit. */
export async function restoreTraining(): Promise<void> {
  const run = await store().lastRun().catch(() => undefined);
  if (!run) return;
  showRun(run);
  if (!run.report) (await trainingChart()).show(run);
}

function stopTraining(): void {
  const { engine } = state;
  if (!state.training) return;
  byId('train-text').textContent = 'Stopping after this batch…';
  void engine.stop();
  // A batch takes well under a second; a worker that does not answer is ended.
  state.stopTimer = window.setTimeout(() => { if (state.training) engine.cancel(); }, 10_000);
}

export function wireTraining(): void {
  byId('train').addEventListener('click', () => void train());
  byId('stop').addEventListener('click', stopTraining);
}
