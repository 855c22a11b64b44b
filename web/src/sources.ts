// Where pictures come from: file pickers, drop zones, paste, the camera and the bundled
// examples. Pictures go to be classified or taught; a model file opens as the model.
import { classifyPictures } from './classify';
import { byId, h } from './dom';
import { Camera, decodePicture, filesOf, NotAnImageError, type Picture } from './images';
import { clearErrors, errorText, showError } from './messages';
import { openModelFile } from './model';
import { state, whenReady } from './state';
import { addExamples, currentTargetLabels } from './teach';

const camera = new Camera(byId<HTMLVideoElement>('camera-video'));

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
    if (f.name.endsWith('.tagnet')) models.push(f);
    else pictures.push(f);
  }
  for (const m of models) await openModelFile(m);
  await classifyPictures(await picturesFrom(pictures, 'classify'));
}

async function teachFiles(files: File[]): Promise<void> {
  // The labels chosen when the pictures were given, whatever is chosen while they decode.
  const labels = currentTargetLabels();
  await whenReady;
  await addExamples(await picturesFrom(files, 'teach'), labels);
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

async function openCamera(target: 'classify' | 'teach'): Promise<void> {
  state.cameraTarget = target;
  const dialog = byId<HTMLDialogElement>('camera-dialog');
  byId('camera-target').textContent = target === 'classify'
    ? 'Pictures you take are classified.'
    : `Pictures you take are added for: ${currentTargetLabels().join(', ') || 'no label'}.`;
  dialog.showModal();
  try {
    await camera.start();
    clearErrors('camera');
  } catch (e) {
    dialog.close();
    showError(`Camera unavailable: ${errorText(e)}`, 'camera');
  }
}

async function takePicture(): Promise<void> {
  try {
    const labels = currentTargetLabels();
    const picture = await camera.capture(`camera-${++state.cameraShots}.png`);
    if (state.cameraTarget === 'classify') await classifyPictures([picture]);
    else await addExamples([picture], labels);
  } catch (e) {
    showError(errorText(e), 'camera');
  }
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
}
