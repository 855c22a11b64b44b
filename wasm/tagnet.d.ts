// Types of tagnet.js: tagnet image classifiers in WebAssembly.
//
// Ownership: a Model and a Trainer each hold memory inside the WebAssembly heap that the
// JavaScript garbage collector cannot see. Call delete() on every Model returned by loadModel()
// and every Trainer returned by createTrainer() when done with it; forgetting to leaks heap
// until the page is closed. A Trainer keeps its model's weights alive on its own, so deleting
// the Model first is safe. Arrays returned by classify(), classifyBatch() and save() are
// ordinary JS copies with no such obligation.

export type Variant = 'simd' | 'simd-threads';

export declare const VARIANTS: readonly Variant[];

/** An error reported by the tagnet core: bad model bytes, a wrong image size, an empty batch... */
export declare class TagnetError extends Error {
  constructor(message: string);
}

export interface CreateOptions {
  /**
   * Engine threads for the 'simd-threads' variant (default: navigator.hardwareConcurrency,
   * or the CPU count under Node, at most 8). Ignored by 'simd', which runs on one thread.
   */
  threads?: number;
  /**
   * 'simd-threads' needs SharedArrayBuffer, i.e. a crossOriginIsolated page (COOP + COEP
   * headers). Default: 'simd-threads' when available, else 'simd'.
   */
  variant?: Variant;
  /** Where tagnet-<variant>.mjs/.wasm live (default: the directory of tagnet.js). */
  baseUrl?: string | URL;
  /** The variant's .wasm bytes, when already at hand (otherwise fetched from baseUrl). */
  wasmBinary?: ArrayBuffer | Uint8Array;
}

/** Bytes of a picture or a model file. */
export type Bytes = Uint8Array | Uint8ClampedArray | ArrayBuffer;

export interface LayerInfo {
  name: string;
  /** Keras class name: "Conv2D", "Dense", "BatchNormalization", ... */
  type: string;
  trainable: boolean;
  params: number;
  /** Per sample, e.g. [96, 96, 32]. */
  outputShape: number[];
}

export interface OnnxImportOptions {
  /** The file's name, which error messages start with. */
  name?: string;
  /** One name per output; default: the labels in the file's metadata. */
  labels?: string[];
  /** Height and width, when the graph leaves them open. */
  inputSize?: number;
  /** Added to a graph that ends in raw scores. */
  head?: 'softmax' | 'sigmoid';
}

export interface ModelInfo {
  /** One name per probability that classify() returns. */
  labels: string[];
  /** [H, W, C]; C = 3 is RGB, 1 grey. */
  inputShape: [number, number, number];
  /** "smallervggnet", "fashionnet", "catsdogs", or "" when the file does not say. */
  architecture: string;
  /** "softmax" (single-label), "sigmoid" (multi-label) or "logit" (two classes, one logit). */
  head: 'softmax' | 'sigmoid' | 'logit';
  labelMode: 'single' | 'multi';
  params: number;
  trainableParams: number;
  layers: LayerInfo[];
  /** The model file's free-form metadata. */
  metadata: Record<string, unknown>;
}

export interface Answers {
  /** (N, labels) row by row. */
  probabilities: Float32Array;
  /** Per picture: above 1 unlike the pictures the model learnt from; -1 without statistics. */
  novelty: Float32Array;
  answers: { predicted: number[]; unseenCombination: boolean }[];
}

export interface BatchItem {
  /** (height, width, 4) bytes, e.g. ImageData.data. */
  rgba: Bytes;
  width: number;
  height: number;
}

export interface AugmentOptions {
  /** Degrees, as Keras' rotation_range. */
  rotation?: number;
  /** Fraction of the width when < 1, else pixels (width_shift_range). */
  widthShift?: number;
  heightShift?: number;
  /** Degrees (shear_range). */
  shear?: number;
  /** Zoom factors drawn from [1 - zoom, 1 + zoom] per axis (zoom_range). */
  zoom?: number;
  hflip?: boolean;
  fill?: 'nearest' | 'constant' | 'reflect' | 'wrap';
  /** The value outside the picture for fill 'constant', in [0, 1]. */
  cval?: number;
}

export interface TrainerOptions {
  /** Adam's learning rate (default 1e-3). */
  lr?: number;
  /** Keras' time-based decay: lr / (1 + decay * iterations) (default 0). */
  decay?: number;
  /** Epochs that fit() runs and after which step() reports done (default 1). */
  epochs?: number;
  batchSize?: number;
  /** Seeds shuffling, augmentation and dropout (default 0). */
  seed?: number;
  /** No augmentation unless a range is given. */
  augment?: AugmentOptions;
}

export interface StepResult {
  /** Running means over the current epoch. */
  loss: number;
  accuracy: number;
  /** The loss of this batch alone. */
  batchLoss: number;
  /** 1-based epoch and step within it. */
  epoch: number;
  step: number;
  steps: number;
  epochEnd: boolean;
  /** The last step of the last requested epoch. */
  done: boolean;
}

/** Called after each batch; return false to stop after it. */
export type OnStep = (step: number, steps: number, loss: number, accuracy: number, result: StepResult) => boolean | void;

export interface RunOptions {
  /** Aborting stops training before the next batch. */
  signal?: AbortSignal;
}

export declare class Trainer {
  private constructor();
  readonly options: Required<TrainerOptions> & { augment: Required<AugmentOptions> };
  /**
   * Adds a labelled picture, resized to the model's input now. `labels` has one value per
   * model output: one-hot for a softmax head, 0/1 per label for a sigmoid head, one 0/1 value
   * for a logit head.
   */
  addExample(rgba: Bytes, width: number, height: number, labels: Float32Array | number[]): void;
  /** Examples added so far. */
  readonly size: number;
  /** Trains on one batch (Adam). Pictures added mid-epoch join at the next epoch. */
  step(): StepResult;
  /** Runs to the end of the current epoch, yielding to the event loop between batches. */
  runEpoch(onStep?: OnStep, options?: RunOptions): Promise<StepResult | null>;
  /** Runs the remaining epochs of options.epochs. */
  fit(onStep?: OnStep, options?: RunOptions): Promise<StepResult | null>;
  /** Frees the examples and optimizer state. Must be called. */
  delete(): void;
}

export interface TeachOptions {
  /** Every picture shows exactly one of the taught labels (classes); default false. */
  onePerPicture?: boolean;
  /** Augmented copies of each picture whose features are cached (default 8). */
  copies?: number;
  /** Adam steps over the cached features (default 300). */
  steps?: number;
  /** Adam's learning rate (default 3e-3). */
  lr?: number;
  /** Share of each label's pictures (at least 2) kept aside for the held-out score (default 0.2). */
  heldOut?: number;
  /** Keep the model's own labels, their outputs unchanged (default true). */
  keepLabels?: boolean;
  seed?: number;
  /** Default: the tutorial's augmentation. */
  augment?: AugmentOptions;
}

export interface TeachProgress {
  phase: 'features' | 'training' | 'done';
  /** Pictures whose features are done (phase 'features'), or fits done (phase 'training'). */
  done: number;
  total: number;
}

export interface TeachReport {
  /** Per taught label: its pictures, and its held-out pictures scored right out of heldOut. */
  labels: { name: string; pictures: number; right: number; heldOut: number }[];
  right: number;
  heldOut: number;
  /** The accuracy of always giving the most common answer. */
  chance: number;
  /** Plain sentences: too few pictures, near chance. */
  warnings: string[];
  trainedParams: number;
  featureSeconds: number;
  trainSeconds: number;
}

/**
 * Teaching new labels from a few pictures each: the frozen base's features are computed once
 * per picture and augmented copy, then only the taught labels' outputs train, so the model's
 * other outputs stay exactly as they were. The model it came from is not changed.
 */
export declare class Teacher {
  private constructor();
  /** Adds an RGBA picture showing `labels` (taught labels; [] for none of them). */
  addPicture(rgba: Bytes, width: number, height: number, labels: string[]): void;
  readonly size: number;
  /** One piece of work. */
  step(): TeachProgress;
  /** Steps until done, yielding between pieces; false when stopped by `signal`. */
  run(onProgress?: (p: TeachProgress) => void, options?: RunOptions): Promise<boolean>;
  report(): TeachReport;
  /** The taught model, a new Model that must be deleted. */
  result(): Model;
  /** Frees the pictures and features. Must be called. */
  delete(): void;
}

export declare class Model {
  private constructor();
  info(): ModelInfo;
  /**
   * Probabilities, one per label, for an RGBA picture of any size: resized to the model's
   * input (area averaging when shrinking, bilinear when enlarging) and scaled to [0, 1], as
   * the native build does. A logit head gives [1 - p, p].
   */
  classify(rgba: Bytes, width: number, height: number): Float32Array;
  /** N pictures: N * labels probabilities, row by row. Throws for an empty batch. */
  classifyBatch(items: BatchItem[]): Float32Array;
  /**
   * What the model says about each picture, by the core's rules (the labels over each label's
   * threshold, or the top one; whether that set of labels occurred in training; novelty).
   */
  answers(items: BatchItem[]): Answers;
  /**
   * Per picture of the last classify()/classifyBatch(): above 1 the picture is unlike the
   * pictures the model learnt from (its features far from every group of training pictures);
   * -1 when the model holds no statistics.
   */
  lastNovelty(): Float32Array;
  /** The model as .tagnet file bytes (loadable natively and by loadModel). */
  save(): Uint8Array;
  /** The model as an ONNX file: input "input" (N, C, H, W), output "output", labels in the metadata. */
  exportOnnx(options?: { opset?: number }): Uint8Array;
  /**
   * Replaces the classifier head with a new Dense layer for `labels` (sigmoid outputs when
   * multiLabel, at least 1 label; else softmax, at least 2); the layers below keep their weights
   * and stay trainable. Stores the labels in the model's card, which forgets what described the
   * old outputs. Trainers created before must be replaced.
   */
  replaceHead(labels: string[], multiLabel: boolean, options?: { seed?: number }): void;
  /**
   * After training: the card forgets the earlier training's metrics, history and description,
   * records `record` with the date as metadata "fine_tuned", and keeps `combinations` (the label
   * sets the examples showed) when given.
   */
  recordFineTuning(record: Record<string, unknown>, combinations?: string[][] | null): void;
  /** What the model knows, in a sentence for people; metadata "description". */
  setDescription(text: string): void;
  /** Layers [0, upToLayer) stop training, the others train (see info().layers). */
  freeze(upToLayer: number): void;
  /**
   * The first layer that trains for `part` by tagnet's fine-tuning policy (the same rules as
   * `tagnet train --trainable`): 'head' is the last Dense layer and what follows, 'last-block'
   * also the last convolutional block, 'all' every layer; or a layer index or name. Changes
   * nothing; throws TagnetError for a model without such a part.
   */
  trainableFrom(part: TrainablePart): number;
  /** Freezes the layers below trainableFrom(part), the rest train; returns that index. */
  setTrainable(part: TrainablePart): number;
  createTrainer(options?: TrainerOptions): Trainer;
  /** Teaches the model `labels` (see Teacher); the Teacher must be deleted. */
  createTeacher(labels: string[], options?: TeachOptions): Teacher;
  /** Frees the model. Must be called. */
  delete(): void;
}

export type TrainablePart = 'head' | 'last-block' | 'all' | (string & {});

export interface Tagnet {
  readonly variant: Variant;
  readonly threads: number;
  /** E.g. "backend hwy, 4 threads". */
  readonly engine: string;
  /** Throws TagnetError, with the reason, for bytes that are not a usable model. */
  loadModel(bytes: Bytes): Model;
  /**
   * An ONNX network as a tagnet model (ops in docs/onnx.md). Throws TagnetError, one line
   * starting with `name` (default "ONNX bytes"), for bytes or a graph tagnet cannot run.
   */
  importOnnx(bytes: Bytes, options?: OnnxImportOptions): Model;
  /**
   * A new, randomly initialised network with one output per label. head "logit" takes two
   * labels and gives one output. The Model must be deleted.
   */
  createModel(architecture: 'fashionnet' | 'smallervggnet' | 'smallervggnet-gap' | 'smallervggnet-gap-linear' | 'catsdogs',
              options: { labels: string[]; head?: 'softmax' | 'sigmoid' | 'logit'; seed?: number }): Model;
  /** Size of the wasm linear memory in bytes: grows on demand, never shrinks. */
  heapBytes(): number;
  /** Bytes currently allocated inside the heap (allocated and not yet freed). */
  heapInUse(): number;
  /** The multi-label tutorial's augmentation (rotation 25, shifts 0.1, shear 0.2, zoom 0.2, flips). */
  tutorialAugment(): Required<AugmentOptions>;
  /**
   * Ends the engine's threads and the module's workers. Needed only to let a Node process exit
   * after using 'simd-threads'; the module cannot be used afterwards.
   */
  dispose(): void;
}

export declare function createTagnet(options?: CreateOptions): Promise<Tagnet>;
