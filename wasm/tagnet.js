// tagnet in WebAssembly: load a .tagnet model, classify RGBA pictures, fine-tune, save.
//
//   import { createTagnet } from './tagnet.js';
//   const tagnet = await createTagnet();                 // picks 'simd-threads' when it can
//   const model = tagnet.loadModel(new Uint8Array(await (await fetch('m.tagnet')).arrayBuffer()));
//   const probs = model.classify(imageData.data, imageData.width, imageData.height);
//   model.delete();                                       // frees the model's wasm memory
//
// Every object this module hands out that holds wasm memory (Model, Trainer, Teacher) must be
// released with delete(); a threaded module's workers end with tagnet.dispose().
//
// The bindings (bindings.cpp) take and give JavaScript values; each call that can fail returns
// an Error, which this file throws as a TagnetError.
//
// Emscripten modules built beside this file: tagnet-simd.mjs (SIMD128, one thread) and
// tagnet-simd-threads.mjs (SIMD128 + pthreads; needs SharedArrayBuffer, i.e. a
// crossOriginIsolated page in browsers).

const onNode = typeof process === 'object' && typeof process.versions === 'object' &&
               typeof process.versions.node === 'string';

/** An error reported by the tagnet core (bad model bytes, wrong image size, ...). */
export class TagnetError extends Error {
  constructor(message) {
    super(message);
    this.name = 'TagnetError';
  }
}

export const VARIANTS = Object.freeze(['simd', 'simd-threads']);

function threadsAvailable() {
  if (typeof SharedArrayBuffer === 'undefined') return false;
  return onNode || globalThis.crossOriginIsolated === true;
}

// The default engine size: every hardware thread, up to 8 (each is a Worker holding its own
// instance of the module, and the networks' layers stop scaling well beyond that).
async function hardwareThreads() {
  let n;
  if (onNode) {
    const os = await import('node:os');
    n = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  } else {
    n = globalThis.navigator?.hardwareConcurrency || 4;
  }
  return Math.max(1, Math.min(8, n));
}

// Lets other tasks (UI events, a cancel button) run between training steps.
function yieldToEventLoop() {
  if (onNode) return new Promise((resolve) => setImmediate(resolve));
  if (typeof MessageChannel === 'function') {
    return new Promise((resolve) => {
      const channel = new MessageChannel();
      channel.port1.onmessage = () => { channel.port1.close(); resolve(); };
      channel.port2.postMessage(null);
    });
  }
  return new Promise((resolve) => setTimeout(resolve, 0));
}

function asBytes(data, what) {
  if (data instanceof Uint8Array) return data;
  if (data instanceof Uint8ClampedArray || data instanceof Int8Array) {
    return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  }
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  throw new TagnetError(`${what} must be a Uint8Array, Uint8ClampedArray or ArrayBuffer`);
}

function checkSize(width, height) {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new TagnetError(`image size must be positive integers, got ${width}x${height}`);
  }
}

/**
 * Loads one of the two module variants and starts its engine.
 * options.threads: engine threads for 'simd-threads' (default: hardware threads).
 * options.variant: 'simd' | 'simd-threads' (default: 'simd-threads' when SharedArrayBuffer is
 *   usable, else 'simd').
 * options.baseUrl: where the .mjs/.wasm files are (default: beside this file).
 * options.wasmBinary: the variant's .wasm bytes, when the caller has them already.
 */
export async function createTagnet(options = {}) {
  const variant = options.variant ?? (threadsAvailable() ? 'simd-threads' : 'simd');
  if (!VARIANTS.includes(variant)) {
    throw new TagnetError(`unknown variant '${variant}' (${VARIANTS.join(', ')})`);
  }
  if (variant === 'simd-threads' && !threadsAvailable()) {
    throw new TagnetError("the 'simd-threads' variant needs SharedArrayBuffer " +
                          '(a crossOriginIsolated page); use the \'simd\' variant');
  }
  let threads = 1;
  if (variant === 'simd-threads') {
    threads = options.threads ?? await hardwareThreads();
    if (!Number.isInteger(threads) || threads < 1) {
      throw new TagnetError(`threads must be a positive integer, got ${threads}`);
    }
  }
  const base = options.baseUrl !== undefined ? new URL(options.baseUrl, import.meta.url)
                                             : new URL('./', import.meta.url);
  const name = `tagnet-${variant}`;
  const moduleArgs = {
    // Read by the module's start-up (-sPTHREAD_POOL_SIZE): one worker per extra engine thread.
    tagnetWorkers: threads - 1,
  };
  // The module gets its binary from here rather than loading it itself: Emscripten 3.1 cannot
  // fetch it from a module Worker (it recognises only windows and classic workers), and Node's
  // fetch() cannot read file: URLs.
  const wasmUrl = new URL(`${name}.wasm`, base);
  if (options.wasmBinary !== undefined) {
    moduleArgs.wasmBinary = options.wasmBinary;
  } else if (onNode) {
    const fs = await import('node:fs');
    const url = await import('node:url');
    moduleArgs.wasmBinary = fs.readFileSync(url.fileURLToPath(wasmUrl));
  } else {
    const response = await fetch(wasmUrl);
    if (!response.ok) throw new TagnetError(`cannot load ${wasmUrl}: HTTP ${response.status}`);
    moduleArgs.wasmBinary = await response.arrayBuffer();
  }
  const factory = (await import(new URL(`${name}.mjs`, base).href)).default;
  const mod = await factory(moduleArgs);
  const started = mod.init(threads);
  if (started instanceof Error) {
    mod.PThread?.terminateAllThreads();
    throw new TagnetError(started.message);
  }
  return new Tagnet(mod, variant, threads);
}

class Tagnet {
  constructor(mod, variant, threads) {
    this._mod = mod;
    /** 'simd' or 'simd-threads'. */
    this.variant = variant;
    /** Engine threads (1 for 'simd'). */
    this.threads = threads;
  }

  /** "backend hwy, 4 threads" */
  get engine() { return this._mod.engineDescription(); }

  /** Bytes of wasm linear memory; it grows when needed and never shrinks. */
  heapBytes() { return this._mod.heapBytes(); }

  /** Parses a .tagnet file. Throws TagnetError for bytes that are not a usable model. */
  loadModel(bytes) {
    const data = asBytes(bytes, 'model bytes');
    return this._newModel((m) => m.load(data, 'model bytes'));
  }

  /**
   * Imports an ONNX network (docs/onnx.md): NCHW or NHWC, converted once. `name` (the file's
   * name) heads error messages; `labels` overrides the file's label names; `inputSize` gives
   * the height and width a graph leaves open; `head` ('softmax' or 'sigmoid') ends a graph
   * that ends in raw scores. Throws TagnetError, one line, for a graph tagnet cannot run.
   */
  importOnnx(bytes, { name, labels, inputSize, head } = {}) {
    const data = asBytes(bytes, 'ONNX bytes');
    if (labels !== undefined && !Array.isArray(labels)) throw new TagnetError('importOnnx: labels must be an array of strings');
    return this._newModel((m) => m.importOnnx(data, { name, labels, inputSize, head }));
  }

  /**
   * A new, randomly initialised network: architecture "fashionnet", "smallervggnet" or
   * "catsdogs", one output per label; head "softmax" (default), "sigmoid" or "logit" (2 labels).
   */
  createModel(architecture, { labels, head = 'softmax', seed = 0 } = {}) {
    if (!Array.isArray(labels)) throw new TagnetError('createModel: labels must be an array of strings');
    return this._newModel((m) => m.create(String(architecture), labels, String(head), seed));
  }

  /** Bytes currently allocated in the heap (malloc'd and not freed). */
  heapInUse() { return this._mod.heapInUse(); }

  /** The multi-label tutorial's augmentation: tagnet's default when fine-tuning. */
  tutorialAugment() { return this._mod.tutorialAugment(); }

  /**
   * Stops the engine's threads and terminates the module's workers (threaded variant). Only
   * needed to let a Node process exit; the module is unusable afterwards.
   */
  dispose() {
    if (!this._mod) return;
    this._mod.init(0);   // a single-threaded engine: joins the pool's threads
    this._mod.PThread?.terminateAllThreads();
    this._mod = null;
  }

  // ---- internals shared with Model, Trainer and Teacher ----

  // A bound call's result, or the TagnetError of the Error it returned.
  _check(result) {
    if (result instanceof Error) throw new TagnetError(result.message);
    return result;
  }

  // A Model whose handle `fill(handle)` set up; the handle is freed when that fails.
  _newModel(fill) {
    const handle = new this._mod.Model();
    try {
      this._check(fill(handle));
    } catch (e) {
      handle.delete();
      throw e;
    }
    return new Model(this, handle);
  }
}

export class Model {
  constructor(tagnet, handle) {
    this._t = tagnet;
    this._m = handle;
    this._last = null;   // the last answers(), for lastNovelty()
  }

  _handle() {
    if (!this._m) throw new TagnetError('the model was deleted');
    return this._m;
  }

  /**
   * {labels, inputShape: [H, W, C], architecture, head, labelMode, params, trainableParams,
   *  layers: [{name, type, trainable, params, outputShape}], metadata}
   */
  info() {
    return this._t._check(this._handle().info());
  }

  /** One probability per label for an RGBA picture of width x height. */
  classify(rgba, width, height) {
    return this.classifyBatch([{ rgba, width, height }]);
  }

  /** Probabilities of several pictures, (N, labels) row-major. */
  classifyBatch(items) {
    return this.answers(items).probabilities;
  }

  /**
   * What the model says about each picture: {probabilities: Float32Array (N, labels) row-major,
   * novelty: Float32Array (N; above 1: unlike the pictures it learnt from; -1: no statistics),
   * answers: [{predicted: label indices over their thresholds (the top one for one label),
   * most probable first, unseenCombination}]}.
   */
  answers(items) {
    const m = this._handle();
    if (!Array.isArray(items) || items.length === 0) throw new TagnetError('classifyBatch: the batch is empty');
    const pictures = items.map((it, i) => {
      if (!it || typeof it !== 'object') throw new TagnetError(`classifyBatch: item ${i} is not {rgba, width, height}`);
      checkSize(it.width, it.height);
      return { rgba: asBytes(it.rgba, `classifyBatch: item ${i} rgba`), width: it.width, height: it.height };
    });
    this._last = this._t._check(m.classify(pictures));
    return this._last;
  }

  /**
   * The novelty of each picture of the last classify() or classifyBatch(): above 1, the
   * picture is unlike the pictures the model learnt from; -1 when the model file holds no
   * statistics to tell.
   */
  lastNovelty() {
    return this._last ? this._last.novelty.slice() : new Float32Array(0);
  }

  /** The model as .tagnet file bytes. */
  save() {
    return this._t._check(this._handle().save());
  }

  /** The model as an ONNX file (opset 13 to 17): NCHW input, dynamic batch, labels in the metadata. */
  exportOnnx({ opset = 13 } = {}) {
    if (!Number.isInteger(opset)) throw new TagnetError('exportOnnx: opset must be an integer');
    return this._t._check(this._handle().exportOnnx(opset));
  }

  /**
   * Replaces the classifier head with a new one for `labels`: sigmoid outputs when multiLabel
   * (at least 1 label), else softmax (at least 2). The layers below keep their weights and stay
   * trainable (see setTrainable); the card forgets what described the old outputs.
   */
  replaceHead(labels, multiLabel, { seed = 0 } = {}) {
    if (!Array.isArray(labels)) throw new TagnetError('replaceHead: labels must be an array of strings');
    this._t._check(this._handle().giveNewLabels(labels, multiLabel ? 'sigmoid' : 'softmax', seed));
  }

  /**
   * After training this model (a Trainer): its card forgets the earlier training's metrics,
   * history and description and records `record` (the training's settings, a JSON object) with
   * the date as "fine_tuned"; `combinations` (arrays of label names, or null) are the label sets
   * the examples showed.
   */
  recordFineTuning(record, combinations = null) {
    if (!record || typeof record !== 'object') throw new TagnetError('recordFineTuning: the record must be an object');
    this._t._check(this._handle().recordFineTuning(record, combinations));
  }

  /** What the model knows, in a sentence for people; stored in its card as "description". */
  setDescription(text) {
    if (typeof text !== 'string') throw new TagnetError('setDescription: the description must be a string');
    this._t._check(this._handle().setDescription(text));
  }

  /** Layers [0, upToLayer) stop training; the rest train. */
  freeze(upToLayer) {
    if (!Number.isInteger(upToLayer)) throw new TagnetError('freeze: the layer index must be an integer');
    this._t._check(this._handle().freeze(upToLayer));
  }

  /**
   * The first layer that trains for `part` by tagnet's fine-tuning policy: 'head' (the last
   * Dense layer on), 'last-block' (the last convolutional block on), 'all', or a layer index or
   * name. Changes nothing.
   */
  trainableFrom(part) {
    if (typeof part !== 'string') throw new TagnetError('trainableFrom: the part must be a string');
    return this._t._check(this._handle().trainableFrom(part));
  }

  /** Freezes the layers below trainableFrom(part); the rest train. Returns that index. */
  setTrainable(part) {
    if (typeof part !== 'string') throw new TagnetError('setTrainable: the part must be a string');
    return this._t._check(this._handle().setTrainable(part));
  }

  /** A fine-tuning session on this model (Adam). See Trainer. */
  createTrainer(options = {}) {
    const a = options.augment ?? {};
    const o = {
      lr: options.lr ?? 1e-3,
      decay: options.decay ?? 0,
      epochs: options.epochs ?? 1,
      batchSize: options.batchSize ?? 32,
      seed: options.seed ?? 0,
      augment: {
        rotation: a.rotation ?? 0,
        widthShift: a.widthShift ?? 0,
        heightShift: a.heightShift ?? 0,
        shear: a.shear ?? 0,
        zoom: a.zoom ?? 0,
        hflip: !!a.hflip,
        fill: a.fill ?? 'nearest',
        cval: a.cval ?? 0,
      },
    };
    for (const k of ['lr', 'decay', 'seed']) {
      if (typeof o[k] !== 'number' || !Number.isFinite(o[k])) throw new TagnetError(`createTrainer: ${k} must be a finite number`);
    }
    for (const k of ['epochs', 'batchSize']) {
      if (!Number.isInteger(o[k])) throw new TagnetError(`createTrainer: ${k} must be an integer`);
    }
    for (const k of ['rotation', 'widthShift', 'heightShift', 'shear', 'zoom', 'cval']) {
      if (typeof o.augment[k] !== 'number' || !Number.isFinite(o.augment[k])) {
        throw new TagnetError(`createTrainer: augment.${k} must be a finite number`);
      }
    }
    if (typeof o.augment.fill !== 'string') throw new TagnetError('createTrainer: augment.fill must be a string');
    const handle = new this._t._mod.Trainer();
    const started = handle.init(this._handle(), o);
    if (started instanceof Error) {
      handle.delete();
      throw new TagnetError(started.message);
    }
    return new Trainer(this._t, handle, o);
  }

  /**
   * Teaches this model `labels` from a few pictures each (see Teacher): the frozen base's
   * features once per picture and augmented copy, then only the taught labels' outputs train.
   * onePerPicture: every picture shows exactly one of the labels. Options: copies (8), steps
   * (300), lr (3e-3), heldOut (0.2), keepLabels (true: the model's own labels stay, unchanged),
   * seed (1), augment (the tutorial's).
   */
  createTeacher(labels, { onePerPicture = false, ...options } = {}) {
    if (!Array.isArray(labels)) throw new TagnetError('createTeacher: labels must be an array of strings');
    const a = { ...this._t.tutorialAugment(), ...(options.augment ?? {}) };
    const o = {
      copies: options.copies ?? 8,
      steps: options.steps ?? 300,
      lr: options.lr ?? 3e-3,
      heldOut: options.heldOut ?? 0.2,
      keepLabels: options.keepLabels ?? true,
      seed: options.seed ?? 1,
      augment: a,
    };
    for (const k of ['copies', 'steps']) {
      if (!Number.isInteger(o[k])) throw new TagnetError(`createTeacher: ${k} must be an integer`);
    }
    for (const k of ['lr', 'heldOut', 'seed']) {
      if (typeof o[k] !== 'number' || !Number.isFinite(o[k])) throw new TagnetError(`createTeacher: ${k} must be a finite number`);
    }
    const handle = new this._t._mod.Teacher();
    const started = handle.init(this._handle(), labels, !!onePerPicture, o);
    if (started instanceof Error) {
      handle.delete();
      throw new TagnetError(started.message);
    }
    return new Teacher(this._t, handle);
  }

  /** Frees the model. A Trainer created from it keeps working until it is deleted too. */
  delete() {
    if (this._m) {
      this._m.delete();
      this._m = null;
    }
  }
}

export class Trainer {
  constructor(tagnet, handle, options) {
    this._t = tagnet;
    this._h = handle;
    this.options = options;
  }

  _handle() {
    if (!this._h) throw new TagnetError('the trainer was deleted');
    return this._h;
  }

  /**
   * Adds a labelled picture; `labels` has one value per model output (one-hot for single-label
   * heads, 0/1 per label for multi-label heads). The picture is resized to the model's input.
   */
  addExample(rgba, width, height, labels) {
    const h = this._handle();
    const data = asBytes(rgba, 'rgba');
    checkSize(width, height);
    const target = labels instanceof Float32Array ? labels : Float32Array.from(labels ?? []);
    this._t._check(h.addExample(data, width, height, target));
  }

  /** Examples added so far. */
  get size() { return this._handle().size(); }

  /**
   * Trains on one batch: {loss, accuracy (running means over the epoch), batchLoss, epoch,
   * step, steps, epochEnd, done}.
   */
  step() {
    return this._t._check(this._handle().step());
  }

  /**
   * Runs the rest of the current epoch. onStep(step, steps, loss, accuracy, result) is called
   * after each batch (result: what step() returns); returning false from it, or aborting
   * `signal`, stops after that batch.
   * Resolves to the last step's result (null when stopped before any step).
   */
  async runEpoch(onStep, { signal } = {}) {
    let last = null;
    for (;;) {
      if (signal?.aborted) return last;
      last = this.step();
      const more = onStep ? onStep(last.step, last.steps, last.loss, last.accuracy, last) : true;
      if (last.epochEnd || more === false) return last;
      await yieldToEventLoop();
    }
  }

  /** Runs epochs until options.epochs are done (or stopped, as runEpoch). */
  async fit(onStep, { signal } = {}) {
    let last = null;
    let stopped = false;
    const report = (...args) => {
      const more = onStep ? onStep(...args) : true;
      if (more === false) stopped = true;
      return more;
    };
    for (;;) {
      const r = await this.runEpoch(report, { signal });
      if (r) last = r;
      if (!r || !r.epochEnd || r.done || stopped || signal?.aborted) return last;
      await yieldToEventLoop();
    }
  }

  /** Frees the trainer's examples and optimizer state. */
  delete() {
    if (this._h) {
      this._h.delete();
      this._h = null;
    }
  }
}

/**
 * Teaching new labels: add pictures, run(), then report() and result(). The model it was
 * created from does not change.
 */
export class Teacher {
  constructor(tagnet, handle) {
    this._t = tagnet;
    this._h = handle;
  }

  _handle() {
    if (!this._h) throw new TagnetError('the teacher was deleted');
    return this._h;
  }

  /** Adds an RGBA picture showing `labels` (taught labels; [] for none of them). */
  addPicture(rgba, width, height, labels) {
    const h = this._handle();
    if (!Array.isArray(labels)) throw new TagnetError('addPicture: labels must be an array of strings');
    const data = asBytes(rgba, 'rgba');
    checkSize(width, height);
    this._t._check(h.add(data, width, height, labels));
  }

  /** Pictures added so far. */
  get size() { return this._handle().size(); }

  /** One piece of work; returns {phase: 'features' | 'training' | 'done', done, total}. */
  step() {
    return this._t._check(this._handle().step());
  }

  /**
   * Steps until done, yielding to the event loop between pieces; onProgress(progress) after
   * each. Aborting `signal` stops between pieces (the teaching can go on with run() later).
   */
  async run(onProgress, { signal } = {}) {
    for (;;) {
      if (signal?.aborted) return false;
      const p = this.step();
      onProgress?.(p);
      if (p.phase === 'done') return true;
      await yieldToEventLoop();
    }
  }

  /**
   * {labels: [{name, pictures, right, heldOut}], right, heldOut, chance, warnings: [string],
   *  trainedParams, featureSeconds, trainSeconds}
   */
  report() { return this._t._check(this._handle().report()); }

  /** The taught model, a new Model (delete() it when done). */
  result() {
    return this._t._newModel((m) => this._handle().result(m));
  }

  /** Frees the teacher's pictures and features. */
  delete() {
    if (this._h) {
      this._h.delete();
      this._h = null;
    }
  }
}
