// Teaching: the labels, the teaching pictures with their labels, and the settings of a training
// (kept in IndexedDB with the threshold).
import { byId, formatCount, h } from './dom';
import type { Picture } from './images';
import { clearErrors, errorText, showError } from './messages';
import type { TrainPart } from './protocol';
import { state, store } from './state';
import type { StoredExample } from './store';

/**
 * The learning rate each choice of trained layers starts with: gentler as more pretrained layers
 * train, but not so slow that a new head is still near its random start after 10 epochs
 * (web/README.md has the measurements).
 */
const LEARNING_RATES: Record<TrainPart, number> = { head: 1e-3, block: 5e-4, all: 3e-4 };

function exampleUrl(e: StoredExample): string {
  return URL.createObjectURL(e.blob);
}

export async function saveTeach(): Promise<void> {
  const { teach } = state;
  teach.threshold = state.threshold;
  try {
    await store().saveSettings({ ...teach, labels: [...teach.labels] });
  } catch (e) {
    showError(`Could not save the settings: ${errorText(e)}`, 'store');
  }
}

function renderTeachLabels(): void {
  const { teach, targetLabels } = state;
  const list = byId('teach-labels');
  list.replaceChildren();
  for (const label of teach.labels) {
    const count = state.examples.filter((e) => e.labels.includes(label)).length;
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
  const { teach } = state;
  const grid = byId('examples');
  grid.replaceChildren();
  for (const e of state.examples) {
    const editors = h('div', { class: 'example-labels' });
    if (teach.mode === 'multi') {
      for (const label of teach.labels) {
        editors.append(h('label', { class: 'check' }, h('input', {
          type: 'checkbox', checked: e.labels.includes(label), 'aria-label': `${e.name}: ${label}`,
          onchange: (ev: Event) => {
            const on = (ev.target as HTMLInputElement).checked;
            e.labels = on ? [...new Set([...e.labels, label])] : e.labels.filter((l) => l !== label);
            void store().updateExample(e);
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
          void store().updateExample(e);
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
  const n = state.examples.length;
  byId('examples-summary').textContent = n ? `${n} teaching picture${n === 1 ? '' : 's'}.` : 'No teaching pictures yet.';
  byId<HTMLButtonElement>('clear-examples').disabled = !n || state.training;
  updateTrainButton();
}

/** "What trains": the parameters each choice trains, from the layers the core says train for it. */
export function renderPartHints(): void {
  const { info } = state;
  if (!info) return;
  // Half of a BatchNormalization layer's parameters are its moving statistics, which training
  // updates but no gradient step does (Keras counts them as non-trainable).
  const params = (from: number) => info.layers.slice(from)
    .reduce((s, l) => s + (l.type === 'BatchNormalization' ? l.params / 2 : l.params), 0);
  for (const [part, from] of Object.entries(info.trainableFrom)) {
    const el = document.querySelector<HTMLElement>(`[data-part="${part}"]`);
    if (el) el.textContent = from === null ? '' : `(${formatCount(params(from))} trainable parameters)`;
  }
}

export function renderTeach(): void {
  const { teach } = state;
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
export function syncTeachToModel(): void {
  const { info, teach } = state;
  if (!info || teach.labels.length) return;
  teach.labels = [...info.labels];
  teach.mode = info.head === 'sigmoid' ? 'multi' : 'single';
  renderTeach();
}

/** What stands in the way of training, as "add pictures to learn from". */
export function problems(): string[] {
  const { teach, examples } = state;
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

export function updateTrainButton(): void {
  const { ready, training } = state;
  const button = byId<HTMLButtonElement>('train');
  const p = problems();
  button.disabled = !ready || training || p.length > 0;
  button.title = p.length ? `To train: ${p.join('; ')}` : '';
  byId('train-hint').textContent = ready && !training && p.length ? `To train: ${p.join('; ')}.` : '';
}

async function addLabel(name: string): Promise<void> {
  const { teach, targetLabels } = state;
  const label = name.trim();
  if (!label) return;
  if (teach.labels.includes(label)) {
    showError(`The label "${label}" is already there.`, 'label');
    return;
  }
  clearErrors('label');
  teach.labels.push(label);
  if (teach.mode === 'single') targetLabels.clear();
  targetLabels.add(label);
  renderTeach();
  await saveTeach();
}

async function removeLabel(label: string): Promise<void> {
  const { teach } = state;
  teach.labels = teach.labels.filter((l) => l !== label);
  state.targetLabels.delete(label);
  for (const e of state.examples) {
    if (e.labels.includes(label)) {
      e.labels = e.labels.filter((l) => l !== label);
      await store().updateExample(e);
    }
  }
  renderTeach();
  await saveTeach();
}

/** The labels new teaching pictures get, as chosen now. */
export function currentTargetLabels(): string[] {
  const { teach } = state;
  const labels = teach.labels.filter((l) => state.targetLabels.has(l));
  return teach.mode === 'single' ? labels.slice(0, 1) : labels;
}

export async function addExamples(pictures: Picture[], labels: string[]): Promise<void> {
  if (!pictures.length) return;
  for (const p of pictures) {
    const stored: StoredExample = { blob: p.blob, name: p.name, labels: [...labels], addedAt: Date.now() };
    try {
      const id = await store().addExample(stored);
      state.examples.push({ ...stored, id, url: exampleUrl(stored) });
    } catch (e) {
      showError(`${p.name}: could not keep the picture (${errorText(e)})`, 'store');
    }
  }
  renderTeachLabels();
  renderExamples();
}

async function removeExamples(ids: number[]): Promise<void> {
  await store().deleteExamples(ids);
  for (const e of state.examples) if (ids.includes(e.id)) URL.revokeObjectURL(e.url);
  state.examples = state.examples.filter((e) => !ids.includes(e.id));
  renderTeachLabels();
  renderExamples();
}

export function readSettingsFromForm(): void {
  const { teach } = state;
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

/** The labels, pictures and settings kept from an earlier visit. */
export async function restoreTeach(): Promise<void> {
  const { teach } = state;
  Object.assign(teach, await store().settings());
  if (teach.labels.length) state.targetLabels.add(teach.labels[0]);
  const stored = await store().examples();
  state.examples = stored.map((e) => ({ ...e, id: e.id as number, url: exampleUrl(e) }));
  renderTeach();
}

export function wireTeach(): void {
  const { teach, targetLabels } = state;
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
  byId('clear-examples').addEventListener('click', () => void removeExamples(state.examples.map((e) => e.id)));
}
