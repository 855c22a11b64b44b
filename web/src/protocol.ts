// Messages between the page and the Web Worker that runs the WebAssembly engine (worker.ts);
// bridge.ts wraps them in promises.
import type { AugmentOptions, ModelInfo, TeachProgress, TeachReport, TrainerOptions, Variant } from './tagnet-types';

/**
 * What trains when the page fine-tunes: the classifier head, the head and the last convolution
 * block, or every layer. The core's fine-tuning policy says which layers each is (the worker
 * asks it: 'block' is its 'last-block').
 */
export type TrainPart = 'head' | 'block' | 'all';

/** A model as the worker describes it to the page. */
export type LoadedModel = ModelInfo;

/** An RGBA picture: (height, width, 4) bytes. */
export interface RgbaImage {
  rgba: Uint8ClampedArray | Uint8Array;
  width: number;
  height: number;
}

export interface ClassifyResult {
  /** One row of probabilities per picture. */
  rows: Float32Array[];
  /** Per picture: above 1 it is unlike the pictures the model learnt from; -1 when the model cannot tell. */
  novelty: number[];
}

export interface InitRequest {
  /** Absolute URL of the directory with tagnet.js and the module variants. */
  wasmBase: string;
  variant?: Variant;
  threads?: number;
}

export interface InitResult {
  variant: Variant;
  threads: number;
  engine: string;
  crossOriginIsolated: boolean;
  /** Milliseconds the worker spent loading and starting the module. */
  startMs: number;
  /** The tutorial's augmentation, as the core defines it: what the page trains with. */
  augment: Required<AugmentOptions>;
}

export interface TrainExample extends RgbaImage {
  /** One value per output: 0/1 per label (multi-label) or one-hot (single-label). */
  target: number[];
}

export interface TrainRequest {
  labels: string[];
  multiLabel: boolean;
  /** Replace the classifier head with a new one for `labels` (else keep training the current one). */
  newHead: boolean;
  part: TrainPart;
  options: TrainerOptions;
  examples: TrainExample[];
  /** Label sets of the examples (multi-label), stored in the model as "combinations". */
  combinations: string[][];
}

/** A training to come, for the count of the parameters each part would train in it. */
export interface TrainableRequest {
  labels: string[];
  multiLabel: boolean;
  newHead: boolean;
}

export interface TrainProgress {
  epoch: number;
  epochs: number;
  step: number;
  steps: number;
  loss: number;
  accuracy: number;
  epochEnd: boolean;
  elapsedMs: number;
}

export interface TrainResult {
  /** The fine-tuned model file (also the worker's current model). */
  bytes: Uint8Array;
  info: LoadedModel;
  stopped: boolean;
  /** Training was stopped before its first batch: the model is the one before. */
  reverted: boolean;
  steps: number;
  elapsedMs: number;
  trainableParams: number;
}

/** A teaching picture and the taught labels it shows. */
export interface TeachPicture extends RgbaImage {
  labels: string[];
}

/**
 * Teaching the current model new labels with the core's few-picture recipe (the head only:
 * cached features of the frozen base, the taught labels' outputs trained on them). The
 * model's other labels stay, unchanged.
 */
export interface TeachRequest {
  labels: string[];
  /** Every picture shows exactly one of the labels. */
  onePerPicture: boolean;
  pictures: TeachPicture[];
  seed: number;
}

export interface TeachResult {
  /** The taught model file (also the worker's current model). */
  bytes: Uint8Array;
  info: LoadedModel;
  report: TeachReport;
  stopped: boolean;
  elapsedMs: number;
}

export type Request =
  | ({ type: 'init' } & InitRequest)
  | { type: 'load'; bytes: Uint8Array }
  | { type: 'importOnnx'; bytes: Uint8Array; name: string }
  | { type: 'classify'; images: RgbaImage[] }
  | ({ type: 'train' } & TrainRequest)
  | ({ type: 'trainable' } & TrainableRequest)
  | ({ type: 'teach' } & TeachRequest)
  | { type: 'stop' };

export interface Results {
  init: InitResult;
  load: LoadedModel;
  /** The ONNX network as .tagnet bytes. */
  importOnnx: Uint8Array;
  classify: ClassifyResult;
  train: TrainResult;
  /** Parameters that train, per part; null where the model lacks the part. */
  trainable: Record<TrainPart, number | null>;
  teach: TeachResult;
  stop: boolean;
}

/** Page -> worker. */
export interface RequestMessage {
  id: number;
  request: Request;
}

/** Worker -> page. */
export type ResponseMessage =
  | { id: number; kind: 'result'; result: unknown }
  | { id: number; kind: 'error'; error: { name: string; message: string } }
  | { id: number; kind: 'progress'; progress: TrainProgress | TeachProgress };
