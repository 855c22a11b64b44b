// Training on the teaching pictures: progress and the live chart, Stop, and the table of the
// predictions before and after.
import { CancelledError } from './bridge';
import type { TrainingChart } from './chart';
import { predictionNow, renderResults, summary } from './classify';
import { byId, formatCount, h } from './dom';
import { decodePicture, type Picture } from './images';
import { clearErrors, errorText, showError } from './messages';
import { modelBeforeTraining, renderChoice, tryTrainedModel } from './model';
import { comboKey } from './predict';
import type { TrainExample } from './protocol';
import { type Prediction, state } from './state';
import { problems, readSettingsFromForm, saveTeach, trainPlan, updateTrainButton } from './teach';

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

    // Predictions before, to compare with after.
    const compare: { name: string; url: string; picture: Picture }[] = state.results.length
      ? state.results.map((r) => ({ name: r.name, url: r.url, picture: r.picture }))
      : plan.pictures.slice(0, 12).map((e, i) => ({ name: e.name, url: e.url, picture: pictures[i] }));
    const beforeRows = await engine.classify(compare.map((c) => c.picture));
    const before = beforeRows.map((probs) => predictionNow(probs));
    state.results.forEach((r, i) => { r.before = before[i]; });

    const chart = await trainingChart();
    chart.reset();
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
    const afterRows = await engine.classify(compare.map((c) => c.picture));
    const after = afterRows.map((probs) => predictionNow(probs));
    if (state.results.length) afterRows.forEach((probs, i) => { state.results[i].prediction = predictionNow(probs); });
    renderResults();
    renderCompare(compare, before, after);
    bar.value = result.stopped ? bar.value : 1;
    text.textContent = `${result.stopped ? 'Stopped' : 'Trained'}: ${result.steps} batches in ` +
      `${(result.elapsedMs / 1000).toFixed(1)} s, ${formatCount(result.trainableParams)} parameters trained. ` +
      'The model is kept in this browser.';
    state.lastTraining = { ...result, examples: trainExamples.length };
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

function renderCompare(rows: { name: string; url: string }[], before: Prediction[], after: Prediction[]): void {
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
