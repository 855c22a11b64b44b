// Where pictures come from: file pickers, drop zones, paste, the camera and the bundled
// examples. Pictures go to be classified or to a teaching card; a model file opens as the model.
import { classifyPictures } from './classify';
import { byId, h } from './dom';
import { decodePicture, filesOf, NotAnImageError, type Picture } from './images';
import { clearErrors, errorText, showError } from './messages';
import { isOnnxFile, openModelFile } from './model';
import { whenReady } from './state';
import { addExamples } from './teach';

async function picturesFrom(files: File[], topic: string): Promise<Picture[]> {
  clearErrors(topic);
  const out: Picture[] = [];
  for (const f of files) {
    try {
      out.push(await decodePicture(f, f.name || 'pasted picture'));
    } catch (e) {
      showError(e instanceof NotAnImageError ? e.message : `${f.name}: ${errorText(e)}`, topic);
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
    if (f.name.endsWith('.tagnet') || isOnnxFile(f.name)) models.push(f);
    else pictures.push(f);
  }
  for (const m of models) await openModelFile(m);
  await classifyPictures(await picturesFrom(pictures, 'classify'));
}

async function teachFiles(card: number, files: File[]): Promise<void> {
  await whenReady;
  await addExamples(card, await picturesFrom(files, `teach-${card}`));
}

/** The id of the teaching card that holds `el`, or null. */
function cardOf(el: EventTarget | Element | null): number | null {
  const card = el instanceof Element ? el.closest<HTMLElement>('#cards [data-card]') : null;
  return card ? Number(card.dataset.card) : null;
}

/** Each card's Add pictures button, drop zone and file chooser, for cards present and to come. */
function wireCards(): void {
  const cards = byId('cards');
  const chooser = (el: Element) => el.closest('[data-card]')?.querySelector<HTMLInputElement>('.card-files');
  cards.addEventListener('click', (e) => {
    const t = e.target as Element;
    if (t.closest('.add-pictures, .card-drop')) chooser(t)?.click();
  });
  cards.addEventListener('keydown', (e) => {
    const t = e.target as Element;
    if ((e.key === 'Enter' || e.key === ' ') && t.matches('.card-drop')) {
      e.preventDefault();
      chooser(t)?.click();
    }
  });
  cards.addEventListener('change', (e) => {
    const input = e.target as HTMLInputElement;
    const card = cardOf(input);
    if (!input.matches('.card-files') || card === null) return;
    const files = [...(input.files ?? [])];
    input.value = '';
    void teachFiles(card, files);
  });
  cards.addEventListener('dragover', (e) => {
    const el = (e.target as Element).closest('[data-card]');
    if (!el) return;
    e.preventDefault();
    el.classList.add('over');
  });
  cards.addEventListener('dragleave', (e) => {
    const el = (e.target as Element).closest('[data-card]');
    if (el && !el.contains(e.relatedTarget as Node | null)) el.classList.remove('over');
  });
  cards.addEventListener('drop', (e) => {
    const card = cardOf(e.target);
    if (card === null) return;
    e.preventDefault();
    e.stopPropagation();
    (e.target as Element).closest('[data-card]')?.classList.remove('over');
    void teachFiles(card, filesOf(e.dataTransfer));
  });
}

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

/** One button per bundled example picture; a click before the model is ready waits for it. */
export async function loadExampleButtons(): Promise<void> {
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
            showError(`${ex.file}: ${errorText(e)}`, 'classify');
          }
        },
      }, h('img', { src: url, alt: '', width: 48, height: 48 }), h('span', { text })));
    }
  } catch (e) {
    box.append(h('span', { class: 'hint', text: `no examples (${errorText(e)})` }));
  }
}

export function wireSources(): void {
  wirePicker(byId('classify-pick'), byId('classify-files'), classifyFiles);
  wireDrop(byId('classify-drop'), byId('classify-files'), classifyFiles);
  wireCards();

  // Paste: into a teaching card when focus is in it, else classified.
  document.addEventListener('paste', (e) => {
    const files = filesOf(e.clipboardData);
    if (!files.length) return;
    e.preventDefault();
    const card = cardOf(document.activeElement);
    void (card !== null ? teachFiles(card, files) : classifyFiles(files));
  });
  // Files dropped outside the drop zones: models open, pictures are classified; the browser
  // must not navigate away to show them.
  document.addEventListener('dragover', (e) => e.preventDefault());
  document.addEventListener('drop', (e) => {
    e.preventDefault();
    void classifyFiles(filesOf(e.dataTransfer));
  });
}
