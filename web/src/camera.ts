// The webcam, in one place at a time: live in Classify (each frame classified in turn, the bars
// updating while the camera runs, a frame kept as a result on demand) or in a teaching card,
// where holding the record button adds a frame to the card every RECORD_MS.
import { CancelledError } from './bridge';
import { classifyPictures, predictionNow, renderProbabilities, summary } from './classify';
import { byId, h } from './dom';
import { cameraButtonState, cameraMissing, captureFrame, framePixels } from './images';
import { clearErrors, errorText, showError } from './messages';
import { state, whenReady } from './state';
import { addExamples } from './teach';

const RECORD_MS = 150;
// At most this often a live classification starts: the engine answers in tens of milliseconds,
// and a page that classified flat out would leave nothing for training or the rest of the page.
const LIVE_MS = 120;

const sleep = (ms: number) => new Promise<void>((resolve) => { setTimeout(resolve, ms); });
const nextFrame = () => new Promise<void>((resolve) => { requestAnimationFrame(() => resolve()); });

function shotName(): string {
  return `camera-${++state.cameraShots}.png`;
}

function recorderOf(card: number): HTMLElement | null {
  return document.querySelector<HTMLElement>(`#cards > [data-card="${card}"] .recorder`);
}

/** Stops the camera wherever it shows. */
export function stopCamera(): void {
  const owner = state.cameraOwner;
  state.camera.stop();
  state.cameraOwner = null;
  state.recording = false;
  if (owner === 'classify') {
    byId('live').hidden = true;
    byId('classify-camera').setAttribute('aria-expanded', 'false');
  } else if (owner !== null) {
    const recorder = recorderOf(owner);
    if (recorder) {
      recorder.hidden = true;
      recorder.replaceChildren();
    }
  }
}

/** Shows the camera in `video` for `owner`, after stopping it elsewhere; false when it cannot run. */
async function startCamera(owner: 'classify' | number, video: HTMLVideoElement): Promise<boolean> {
  if (state.cameraOwner !== null) stopCamera();
  state.cameraOwner = owner;
  try {
    await state.camera.start(video);
    clearErrors('camera');
    return true;
  } catch (e) {
    if (state.cameraOwner === owner) stopCamera();
    showError(`Camera unavailable: ${errorText(e)}`, 'camera');
    return false;
  }
}

// ---- Live classification ---------------------------------------------------------------------

function renderLive(probs: Float32Array): void {
  const p = predictionNow(probs);
  byId('live-probs').replaceChildren(renderProbabilities(p));
  byId('live-summary').textContent = summary(p);
  byId('live').dataset.frames = String(++state.liveFrames);
}

/** Classifies the camera's frames one after the other while it shows in Classify. */
async function classifyLive(video: HTMLVideoElement): Promise<void> {
  await whenReady;
  while (state.cameraOwner === 'classify') {
    const started = performance.now();
    try {
      const [probs] = await state.engine.classify([framePixels(video)]);
      if (state.cameraOwner !== 'classify') break;
      renderLive(probs);
    } catch (e) {
      // Cancel (of another request) ends the engine worker; the next frame starts a new one.
      if (!(e instanceof CancelledError)) byId('live-summary').textContent = errorText(e);
    }
    await nextFrame();
    await sleep(LIVE_MS - (performance.now() - started));
  }
}

async function openLive(): Promise<void> {
  if (state.cameraOwner === 'classify') {
    stopCamera();
    return;
  }
  const video = byId<HTMLVideoElement>('live-video');
  byId('live').hidden = false;
  byId('classify-camera').setAttribute('aria-expanded', 'true');
  state.liveFrames = 0;
  byId('live-summary').textContent = 'Starting the camera…';
  byId('live-probs').replaceChildren();
  if (await startCamera('classify', video)) void classifyLive(video);
}

async function snapshot(): Promise<void> {
  const video = state.camera.video;
  if (state.cameraOwner !== 'classify' || !video) return;
  try {
    await classifyPictures([await captureFrame(video, shotName())]);
  } catch (e) {
    showError(errorText(e), 'camera');
  }
}

// ---- Recording in a teaching card ------------------------------------------------------------

/** Adds a frame to the card every RECORD_MS while the record button is held. */
async function record(card: number, video: HTMLVideoElement): Promise<void> {
  if (state.recording) return;
  state.recording = true;
  try {
    while (state.recording && state.cameraOwner === card && video.isConnected) {
      const started = performance.now();
      await addExamples(card, [await captureFrame(video, shotName())]);
      await sleep(RECORD_MS - (performance.now() - started));
    }
  } catch (e) {
    showError(errorText(e), 'camera');
  } finally {
    state.recording = false;
  }
}

function holdButton(card: number, video: HTMLVideoElement): HTMLButtonElement {
  const stop = () => { state.recording = false; };
  const button = h('button', { type: 'button', class: 'primary hold', text: 'Hold to record',
    onpointerdown: (e: PointerEvent) => {
      button.setPointerCapture(e.pointerId);
      void record(card, video);
    },
    onpointerup: stop, onpointercancel: stop, onlostpointercapture: stop,
    onkeydown: (e: KeyboardEvent) => {
      if ((e.key === ' ' || e.key === 'Enter') && !e.repeat) {
        e.preventDefault();
        void record(card, video);
      }
    },
    onkeyup: stop, onblur: stop,
  });
  return button;
}

async function openRecorder(card: number): Promise<void> {
  const recorder = recorderOf(card);
  if (!recorder) return;
  if (state.cameraOwner === card) {
    stopCamera();
    return;
  }
  const video = h('video', { playsinline: true, muted: true, 'aria-label': 'Camera preview' });
  recorder.replaceChildren(video, h('div', { class: 'recorder-controls' },
    holdButton(card, video),
    h('button', { type: 'button', class: 'close-camera', text: 'Close camera', onclick: stopCamera }),
    h('span', { class: 'hint', text: 'Hold the button down: a picture every 0.15 s.' })));
  recorder.hidden = false;
  await startCamera(card, video);
}

export function wireCamera(): void {
  const missing = cameraMissing();
  byId('camera-note').textContent = missing ? `No camera: ${missing}.` : '';
  cameraButtonState(byId<HTMLButtonElement>('classify-camera'));
  byId('classify-camera').addEventListener('click', () => void openLive());
  byId('live-stop').addEventListener('click', stopCamera);
  byId('live-snapshot').addEventListener('click', () => void snapshot());
  byId('cards').addEventListener('card-removed', (e) => {
    if (state.cameraOwner === Number((e.target as HTMLElement).dataset.card)) stopCamera();
  });
  byId('cards').addEventListener('click', (e) => {
    const button = (e.target as Element).closest<HTMLElement>('.card-camera');
    const card = button?.closest<HTMLElement>('[data-card]');
    if (card) void openRecorder(Number(card.dataset.card));
  });
}
