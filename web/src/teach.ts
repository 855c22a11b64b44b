// Teaching: one card per label being taught, each with its own pictures (which sources.ts and
// camera.ts add to it), and the settings of a training (kept in IndexedDB with the threshold).
// A picture has its card's label and, with several labels per picture, the other labels the
// user gives it on its thumbnail: nothing else is ever attached to it.
import { byId, formatCount, h, listNames, plural } from './dom';
import { cameraButtonState, type Picture } from './images';
import { clearErrors, errorText, showError, showInfo } from './messages';
import type { TrainPart } from './protocol';
import { type ExampleItem, state, store } from './state';
import type { StoredExample, TeachCard } from './store';

/**
 * The learning rate each choice of trained layers starts with: gentler as more pretrained layers
 * train, but not so slow that a new head is still near its random start after 10 epochs
 * (web/README.md has the measurements).
 */
const LEARNING_RATES: Record<TrainPart, number> = { head: 1e-3, block: 5e-4, all: 3e-4 };

const NONE_NAME = 'None of the labels';

function exampleUrl(e: StoredExample): string {
  return URL.createObjectURL(e.blob);
}

export async function saveTeach(): Promise<void> {
  const { teach } = state;
  teach.threshold = state.threshold;
  try {
    await store().saveSettings(teach);
  } catch (e) {
    showError(`Could not save the settings: ${errorText(e)}`, 'store');
  }
}

function cardOf(id: number): TeachCard | undefined {
  return state.teach.cards.find((c) => c.id === id);
}

/** The cards that are labels, in order: the labels a training teaches. */
export function labelCards(): TeachCard[] {
  return state.teach.cards.filter((c) => !c.none);
}

/** The labels of a teaching picture: its card's, and with several labels per picture the others it was given. */
export function labelsOf(e: StoredExample): string[] {
  const ids = new Set([e.card, ...(state.teach.mode === 'multi' ? e.extra : [])]);
  return labelCards().filter((c) => ids.has(c.id)).map((c) => c.name);
}

/** Whether a picture takes part in training: with one label per picture, the card of no label does not. */
function trains(e: StoredExample): boolean {
  const card = cardOf(e.card);
  return card !== undefined && !(card.none && state.teach.mode === 'single');
}

export interface TrainPlan {
  labels: string[];
  multi: boolean;
  /** The model's head does not fit these labels and mode: a new one replaces it. */
  newHead: boolean;
  /** The model's head is one logit for these two classes: targets are one 0/1 value. */
  logit: boolean;
  pictures: ExampleItem[];
  /** The labels of each picture. */
  targets: string[][];
}

function sameLabels(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((l, i) => l === b[i]);
}

/** What a training now would learn: the labels of the cards and the pictures with theirs. */
export function trainPlan(): TrainPlan {
  const { info } = state;
  const labels = labelCards().map((c) => c.name);
  const multi = state.teach.mode === 'multi';
  const same = info !== null && sameLabels(info.labels, labels);
  const pictures = state.examples.filter(trains);
  return {
    labels, multi, pictures, targets: pictures.map(labelsOf),
    newHead: !same || (multi ? info.head !== 'sigmoid' : info.head === 'sigmoid'),
    logit: same && !multi && info.head === 'logit',
  };
}

// ---- Rendering -------------------------------------------------------------------------------

function thumb(e: ExampleItem, card: TeachCard): HTMLElement {
  const labels = labelsOf(e);
  const item = h('li', { class: 'thumb', 'data-id': e.id, 'data-name': e.name, 'data-labels': labels.join(',') },
    h('img', { src: e.url, alt: e.name, title: e.name, width: 72, height: 72 }),
    h('button', { type: 'button', class: 'thumb-remove', 'aria-label': `Remove the picture ${e.name}`, title: 'Remove',
      text: '×', onclick: () => void removeExamples([e.id]) }));
  const others = labelCards().filter((c) => c.id !== card.id);
  if (state.teach.mode === 'multi' && !card.none && others.length) {
    item.append(h('div', { class: 'thumb-labels' }, ...others.map((c) => {
      const on = e.extra.includes(c.id);
      return h('button', { type: 'button', class: 'label-toggle', 'data-label': c.name, 'aria-pressed': String(on),
        'aria-label': `${e.name}: also ${c.name}`, title: `Also ${c.name}`, text: c.name,
        onclick: () => void toggleExtra(e, c.id) });
    })));
  }
  return item;
}

function cameraButton(): HTMLButtonElement {
  const button = h('button', { type: 'button', class: 'card-camera', text: 'Camera', 'aria-describedby': 'camera-note' });
  cameraButtonState(button);
  return button;
}

function cardElement(card: TeachCard): HTMLElement {
  const existing = document.querySelector<HTMLElement>(`#cards > [data-card="${card.id}"]`);
  if (existing) return existing;
  const title = card.none
    ? h('h3', { class: 'card-name', text: NONE_NAME })
    : h('input', { class: 'card-name', type: 'text', maxlength: 40, autocomplete: 'off', value: card.name,
      onchange: (ev: Event) => void renameCard(card, ev.target as HTMLInputElement) });
  return h('li', { class: 'teach-card', 'data-card': card.id, 'data-none': card.none },
    h('div', { class: 'teach-card-head' }, title,
      h('span', { class: 'card-count hint' }),
      h('button', { type: 'button', class: 'small remove-card', text: 'Remove', onclick: () => void removeCard(card) })),
    h('p', { class: 'card-note hint' }),
    h('div', { class: 'card-sources' },
      h('button', { type: 'button', class: 'add-pictures', text: 'Add pictures…' }),
      h('input', { type: 'file', class: 'card-files visually-hidden', accept: 'image/*', multiple: true, tabindex: -1,
        'aria-hidden': 'true' }),
      cameraButton(),
      h('div', { class: 'drop card-drop', tabindex: 0, role: 'button' },
        'Drop pictures here', h('span', { class: 'hint', text: 'or paste (Ctrl+V) while this box has focus' }))),
    h('div', { class: 'recorder', hidden: true }),
    h('ul', { class: 'thumbs' }));
}

function renderCard(card: TeachCard, el: HTMLElement, thumbs: boolean): void {
  const name = card.none ? NONE_NAME : card.name;
  const items = state.examples.filter((e) => e.card === card.id);
  el.dataset.label = card.none ? '' : card.name;
  const input = el.querySelector<HTMLInputElement>('input.card-name');
  if (input) {
    if (document.activeElement !== input) input.value = card.name;
    input.setAttribute('aria-label', `Name of the label ${card.name}`);
  }
  el.querySelector('.card-count')!.textContent = plural(items.length, 'picture');
  el.querySelector('.remove-card')!.setAttribute('aria-label', `Remove ${name} and its pictures`);
  el.querySelector('.add-pictures')!.setAttribute('aria-label', `Add pictures to ${name}`);
  el.querySelector('.card-camera')!.setAttribute('aria-label', `Camera for ${name}`);
  el.querySelector('.card-drop')!.setAttribute('aria-label', `Drop or paste pictures for ${name}`);
  el.querySelector('.thumbs')!.setAttribute('aria-label', `Pictures of ${name}`);
  el.querySelector('.card-note')!.textContent = !card.none ? ''
    : state.teach.mode === 'multi' ? 'Pictures that have none of the labels: they teach the model what is none of them.'
    : 'Not used with one label per picture.';
  if (thumbs) el.querySelector('.thumbs')!.replaceChildren(...items.map((e) => thumb(e, card)));
}

/**
 * The cards, in order, each with its pictures (only card `only`'s when given); cards already shown
 * keep their elements, and so their focus and camera.
 */
export function renderCards(only?: number): void {
  const { cards, mode } = state.teach;
  const list = byId('cards');
  const ids = new Set(cards.map((c) => String(c.id)));
  list.querySelectorAll<HTMLElement>(':scope > [data-card]').forEach((el) => {
    if (ids.has(el.dataset.card ?? '')) return;
    el.dispatchEvent(new CustomEvent('card-removed', { bubbles: true }));
    el.remove();
  });
  cards.forEach((card, i) => {
    const el = cardElement(card);
    const isNew = !el.isConnected;
    if (list.children[i] !== el) list.insertBefore(el, list.children[i] ?? null);
    renderCard(card, el, isNew || only === undefined || only === card.id);
  });
  byId('cards-empty').hidden = cards.length > 0;
  byId('add-none').hidden = mode !== 'multi' || cards.some((c) => c.none);
  const n = state.examples.length;
  byId('examples-summary').textContent = n ? `${plural(n, 'teaching picture')} in ${plural(cards.length, 'card')}.` : '';
  byId<HTMLButtonElement>('clear-teach').disabled = !cards.length || state.training;
  updateTrainButton();
  void renderPartHints();
}

/**
 * "What trains": the parameters each choice would train with the labels of the cards (a new head
 * for new labels), as the core counts them for a training; asked again only when the labels,
 * the mode or the model change.
 */
export async function renderPartHints(): Promise<void> {
  const { labels, multi, newHead } = trainPlan();
  const key = JSON.stringify([labels, multi, newHead, state.info?.params, state.modelBytes?.length, state.modelName]);
  if (!state.info || key === state.partHintsKey) return;
  state.partHintsKey = key;
  let counts: Partial<Record<TrainPart, number | null>> = {};
  try {
    if (labels.length) counts = await state.engine.trainable({ labels, multiLabel: multi, newHead });
  } catch {
    // No count beats a wrong one (e.g. a head the core cannot make for these labels).
  }
  if (key !== state.partHintsKey) return;
  document.querySelectorAll<HTMLElement>('[data-part]').forEach((el) => {
    const n = counts[el.dataset.part as TrainPart];
    el.textContent = typeof n === 'number' ? `(${formatCount(n)} trainable parameters)` : '';
  });
}

const PART_NAMES: Record<TrainPart, string> = { head: 'the head', block: 'head and last block', all: 'everything' };

/** The settings in one line, beside "Advanced" while it is closed. */
function renderSettingsLine(): void {
  const { teach } = state;
  // The head alone learns with the core's few-picture recipe, which has no epochs to set.
  const recipe = teach.part === 'head';
  for (const id of ['epochs', 'lr', 'batch-size', 'augment']) byId<HTMLInputElement>(id).disabled = recipe;
  byId('advanced-now').textContent = recipe
    ? 'the head learns the new labels in seconds; the model keeps its own'
    : `${PART_NAMES[teach.part]} trains, ${plural(teach.epochs, 'epoch')}, ` +
      `learning rate ${teach.lr}, batches of ${teach.batchSize}${teach.augment ? ', augmented' : ''}`;
}

export function renderTeach(): void {
  const { teach } = state;
  document.querySelectorAll<HTMLInputElement>('input[name="mode"]').forEach((r) => { r.checked = r.value === teach.mode; });
  document.querySelectorAll<HTMLInputElement>('input[name="part"]').forEach((r) => { r.checked = r.value === teach.part; });
  byId<HTMLInputElement>('epochs').value = String(teach.epochs);
  byId<HTMLInputElement>('lr').value = String(teach.lr);
  byId<HTMLInputElement>('batch-size').value = String(teach.batchSize);
  byId<HTMLInputElement>('augment').checked = teach.augment;
  renderSettingsLine();
  renderCards();
}

/** What stands in the way of training, as "add pictures for trousers". */
export function problems(): string[] {
  const { teach } = state;
  const labels = labelCards();
  const out: string[] = [];
  if (teach.mode === 'single' && labels.length < 2) out.push('add at least two labels');
  if (teach.mode === 'multi' && labels.length < 1) out.push('add a label');
  const plan = trainPlan();
  const missing = labels.filter((c) => !plan.targets.some((t) => t.includes(c.name))).map((c) => c.name);
  if (missing.length) out.push(`add pictures for ${listNames(missing)}`);
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

// ---- Changes ---------------------------------------------------------------------------------

/** Why `name` cannot name a label (empty, or another card's), or null. */
function badName(name: string, except?: TeachCard): string | null {
  if (!name) return 'A label needs a name.';
  if (labelCards().some((c) => c !== except && c.name === name)) return `There is already a label "${name}".`;
  return null;
}

function freeName(): string {
  for (let i = labelCards().length + 1; ; ++i) if (!badName(`Label ${i}`)) return `Label ${i}`;
}

async function addCard(name: string, none = false): Promise<boolean> {
  const { teach } = state;
  const label = none ? NONE_NAME : name.trim() || freeName();
  const bad = none ? null : badName(label);
  if (bad) {
    showError(bad, 'new-label');
    return false;
  }
  clearErrors('new-label');
  teach.cards.push({ id: teach.nextCardId++, name: label, ...(none ? { none: true } : {}) });
  renderCards();
  await saveTeach();
  return true;
}

async function renameCard(card: TeachCard, input: HTMLInputElement): Promise<void> {
  const name = input.value.trim();
  const topic = `label-${card.id}`;
  const bad = badName(name, card);
  if (bad) {
    showError(`${bad} The label keeps its name ${card.name}.`, topic);
    input.value = card.name;
    return;
  }
  clearErrors(topic);
  card.name = name;
  renderCards();
  await saveTeach();
}

async function removeCard(card: TeachCard): Promise<void> {
  const { teach } = state;
  const pictures = state.examples.filter((e) => e.card === card.id);
  const name = card.none ? NONE_NAME : card.name;
  if (pictures.length && !window.confirm(`Remove ${name} and its ${plural(pictures.length, 'picture')}?`)) return;
  await removeExamples(pictures.map((e) => e.id));
  for (const e of state.examples.filter((x) => x.extra.includes(card.id))) {
    e.extra = e.extra.filter((id) => id !== card.id);
    await store().updateExample(e);
  }
  teach.cards = teach.cards.filter((c) => c !== card);
  clearErrors(`label-${card.id}`);
  // Saved before the card leaves the page: what the page shows is what a reload brings back.
  await saveTeach();
  renderCards();
}

async function toggleExtra(e: ExampleItem, id: number): Promise<void> {
  e.extra = e.extra.includes(id) ? e.extra.filter((x) => x !== id) : [...e.extra, id];
  renderCards(e.card);
  try {
    await store().updateExample(e);
  } catch (err) {
    showError(`${e.name}: could not keep its labels (${errorText(err)})`, 'store');
  }
}

/** Adds pictures to a card: they get its label and nothing else. */
export async function addExamples(cardId: number, pictures: Picture[]): Promise<void> {
  if (!pictures.length || !cardOf(cardId)) return;
  for (const p of pictures) {
    const stored: StoredExample = { blob: p.blob, name: p.name, card: cardId, extra: [], addedAt: Date.now() };
    try {
      const id = await store().addExample(stored);
      state.examples.push({ ...stored, id, url: exampleUrl(stored) });
    } catch (e) {
      showError(`${p.name}: could not keep the picture (${errorText(e)})`, 'store');
    }
  }
  renderCards(cardId);
}

async function removeExamples(ids: number[]): Promise<void> {
  if (!ids.length) return;
  await store().deleteExamples(ids);
  const cards = new Set<number>();
  for (const e of state.examples) {
    if (!ids.includes(e.id)) continue;
    URL.revokeObjectURL(e.url);
    cards.add(e.card);
  }
  state.examples = state.examples.filter((e) => !ids.includes(e.id));
  if (cards.size === 1) renderCards([...cards][0]);
  else renderCards();
}

async function clearTeach(): Promise<void> {
  const n = state.examples.length;
  if (n && !window.confirm(`Remove every label and its pictures (${plural(n, 'picture')})?`)) return;
  await removeExamples(state.examples.map((e) => e.id));
  state.teach.cards = [];
  renderCards();
  await saveTeach();
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
  renderSettingsLine();
}

/** The cards, pictures and settings kept from an earlier visit. */
export async function restoreTeach(): Promise<void> {
  const { teach } = state;
  const kept = await store().teach();
  Object.assign(teach, kept.settings);
  if (!Array.isArray(teach.cards)) teach.cards = [];
  teach.nextCardId = Math.max(teach.nextCardId || 1, ...teach.cards.map((c) => c.id + 1));
  state.examples = kept.examples.map((e) => ({ ...e, id: e.id as number, url: exampleUrl(e) }));
  if (kept.old === 'migrated') {
    showInfo('Teaching pictures kept from an earlier version of this page are now sorted into one card per label.');
  } else if (kept.old === 'dropped') {
    showInfo('Teaching pictures kept by an earlier version of this page could not be read and were left out.');
  }
  renderTeach();
}

export function wireTeach(): void {
  const { teach } = state;
  byId('new-label-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const input = byId<HTMLInputElement>('new-label');
    void addCard(input.value).then((added) => { if (added) input.value = ''; });
    input.focus();
  });
  byId('add-none').addEventListener('click', () => void addCard('', true));
  document.querySelectorAll<HTMLInputElement>('input[name="mode"]').forEach((r) => r.addEventListener('change', () => {
    if (!r.checked) return;
    teach.mode = r.value === 'multi' ? 'multi' : 'single';
    renderCards();
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
  byId('clear-teach').addEventListener('click', () => void clearTeach());
}
