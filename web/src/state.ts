// The page's one state: every module of the page reads and changes this object, and keeps no
// variables of its own.
import { EngineBridge } from './bridge';
import type { TrainingChart } from './chart';
import { Camera, type Picture } from './images';
import type { InitResult, LoadedModel, TeachResult, TrainResult } from './protocol';
import type { Store, StoredExample, StoredModel, TeachSettings } from './store';

export interface Prediction {
  probs: Float32Array;
  labels: string[];
  head: LoadedModel['head'];
  combos: Set<string>;
  /** Above 1: unlike the pictures the model learnt from; -1 or absent: unknown. */
  novelty?: number;
}

export interface ResultItem {
  id: number;
  name: string;
  url: string;
  picture: Picture;
  prediction: Prediction | null;
  /** The prediction of the model before the last training, when there was one. */
  before: Prediction | null;
}

export interface ExampleItem extends StoredExample {
  id: number;
  url: string;
}

export interface PageTimings {
  /** performance.now() at each milestone (ms since navigation). */
  serviceWorker?: number;
  /** IndexedDB open and read. */
  storeReady?: number;
  /** The model's bytes at hand. */
  modelBytes?: number;
  engineReady?: number;
  modelReady?: number;
  ready?: number;
  firstClassification?: number;
  /** Milliseconds the last classification took in the engine worker, round trip. */
  lastClassifyMs?: number;
  /** Milliseconds the engine took to load the last model, round trip. */
  lastLoadMs?: number;
}

export type ModelSource = StoredModel['source'];

export interface PageState {
  readonly timings: PageTimings;
  /** The engine worker; it starts with the first call. */
  readonly engine: EngineBridge;
  /** The engine's variant and the core's tutorial augmentation, once it started. */
  engineInfo: InitResult | null;
  /** IndexedDB, once open (see store()). */
  store: Store | null;

  // The model in use.
  info: LoadedModel | null;
  /** Its label combinations seen in training (comboKey of each). */
  combos: Set<string>;
  modelBytes: Uint8Array | null;
  modelName: string;
  modelSource: ModelSource;
  /** The model in use was trained just now: the page offers to keep it or go back. */
  trial: boolean;
  /** The model before it, to go back to ("Go back", "Use the previous model"). */
  previous: StoredModel | null;

  // Classifying.
  threshold: number;
  results: ResultItem[];
  nextResultId: number;

  // Teaching: one card per label (teach.cards), each with its pictures.
  readonly teach: TeachSettings;
  examples: ExampleItem[];
  training: boolean;
  /** What the "What trains" counts were last asked for (labels, mode, model). */
  partHintsKey: string;
  /** The timer that ends a worker that does not stop. */
  stopTimer: number;
  /** uPlot loads with the first training, not with the page. */
  chart: TrainingChart | null;
  lastTraining: (TrainResult & { examples: number }) | null;
  /** The last teaching with the few-picture recipe: its report and time. */
  lastTeach: (TeachResult & { examples: number }) | null;

  // The page around them.
  /** The engine and the model are ready (see whenReady). */
  ready: boolean;
  /** Nested busy() calls showing the loading bar. */
  busyDepth: number;
  /** The webcam, shown live in Classify or in one teaching card at a time. */
  readonly camera: Camera;
  /** Where the camera shows: live classification, the teaching card with this id, or nowhere. */
  cameraOwner: 'classify' | number | null;
  /** Frames classified live since the camera started. */
  liveFrames: number;
  /** A card's record button is held down. */
  recording: boolean;
  /** Pictures taken with the camera so far, to name them. */
  cameraShots: number;
}

export const state: PageState = {
  timings: {},
  engine: new EngineBridge(new URL('wasm/', document.baseURI), { currentModel: () => state.modelBytes }),
  engineInfo: null,
  store: null,
  info: null,
  combos: new Set(),
  modelBytes: null,
  modelName: 'default.tagnet',
  modelSource: 'default',
  trial: false,
  previous: null,
  threshold: 0.5,
  results: [],
  nextResultId: 1,
  teach: {
    mode: 'single', cards: [], nextCardId: 1, part: 'head', epochs: 10, lr: 1e-3, batchSize: 16, augment: true,
    threshold: null,
  },
  examples: [],
  training: false,
  partHintsKey: '',
  stopTimer: 0,
  chart: null,
  lastTraining: null,
  lastTeach: null,
  ready: false,
  busyDepth: 0,
  camera: new Camera(),
  cameraOwner: null,
  liveFrames: 0,
  recording: false,
  cameraShots: 0,
};

function readiness(): { promise: Promise<void>; resolve: () => void } {
  let resolve = () => {};
  const promise = new Promise<void>((r) => { resolve = r; });
  return { promise, resolve };
}

const engineAndModel = readiness();
/** Resolves when the engine and the model are ready. */
export const whenReady = engineAndModel.promise;

export function markReady(): void {
  state.ready = true;
  engineAndModel.resolve();
}

/** The page's IndexedDB store; opened at start-up, before anything is kept. */
export function store(): Store {
  if (!state.store) throw new Error('the page store is not open yet');
  return state.store;
}
