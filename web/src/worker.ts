// The Web Worker that owns the WebAssembly engine, so that classifying and training never block
// the page (the threaded module also blocks its calling thread while its workers compute,
// which a page's main thread must not do). One request runs at a time, in arrival order;
// 'stop' is answered at once and ends a running training after its current batch.
import type {
  ClassifyResult, InitRequest, InitResult, LoadedModel, Request, RequestMessage, ResponseMessage,
  RgbaImage, TeachRequest, TeachResult, TrainableRequest, TrainPart, TrainProgress, TrainRequest, TrainResult,
} from './protocol';
import type { AugmentOptions, Model, Tagnet, TeachProgress, TrainablePart } from './tagnet-types';

interface WorkerScope {
  postMessage(message: unknown, transfer?: Transferable[]): void;
  onmessage: ((event: MessageEvent<RequestMessage>) => void) | null;
}
const scope = self as unknown as WorkerScope;

type TagnetModule = typeof import('../../wasm/tagnet.js');

let tagnet: Tagnet | null = null;
let model: Model | null = null;
let stopController = new AbortController();

/** A signal for the run about to start, which the next 'stop' aborts. */
function stopping(): AbortSignal {
  stopController = new AbortController();
  return stopController.signal;
}

// Lets queued messages ('stop') in before a run's first step (the module's fit() and run()
// yield between steps).
function yieldToMessages(): Promise<void> {
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => {
      channel.port1.close();
      resolve();
    };
    channel.port2.postMessage(null);
  });
}

function need<T>(value: T | null, what: string): T {
  if (value === null) throw new Error(`${what} is not loaded yet`);
  return value;
}

/** The core's name for each part the page offers to train (its stored settings say 'block'). */
const CORE_PARTS: Record<TrainPart, TrainablePart> = { head: 'head', block: 'last-block', all: 'all' };

/**
 * A float32 the core gave as the shortest decimal that is the same float32: 0.1, not
 * 0.10000000149011612, in the page and in the fine-tuned model's metadata.
 */
function shortestFloat32(x: number): number {
  for (let digits = 1; digits < 9; ++digits) {
    const y = Number(x.toPrecision(digits));
    if (Math.fround(y) === Math.fround(x)) return y;
  }
  return x;
}

function tutorialAugment(t: Tagnet): Required<AugmentOptions> {
  const a = t.tutorialAugment();
  for (const k of ['rotation', 'widthShift', 'heightShift', 'shear', 'zoom', 'cval'] as const) a[k] = shortestFloat32(a[k]);
  return a;
}

async function init(r: InitRequest): Promise<InitResult> {
  const t0 = performance.now();
  const mod = (await import(/* @vite-ignore */ new URL('tagnet.js', r.wasmBase).href)) as TagnetModule;
  tagnet?.dispose();
  tagnet = await mod.createTagnet({ variant: r.variant, threads: r.threads, baseUrl: r.wasmBase });
  return {
    variant: tagnet.variant,
    threads: tagnet.threads,
    engine: tagnet.engine,
    crossOriginIsolated: (self as unknown as { crossOriginIsolated?: boolean }).crossOriginIsolated === true,
    startMs: performance.now() - t0,
    augment: tutorialAugment(tagnet),
  };
}

function load(bytes: Uint8Array): LoadedModel {
  const t = need(tagnet, 'the engine');
  const next = t.loadModel(bytes);   // throws for bytes that are not a model: the old one stays
  model?.delete();
  model = next;
  return model.info();
}

/** An ONNX network as .tagnet bytes: the page keeps and reloads models as .tagnet files. */
function importOnnx(bytes: Uint8Array, name: string): Uint8Array {
  const imported = need(tagnet, 'the engine').importOnnx(bytes, { name });
  try {
    return imported.save();
  } finally {
    imported.delete();
  }
}

function classify(images: RgbaImage[]): ClassifyResult {
  const m = need(model, 'a model');
  const labels = m.info().labels.length;
  const out: ClassifyResult = { rows: [], novelty: [] };
  // Batches of 16 keep the activations of large requests within a modest heap.
  for (let i = 0; i < images.length; i += 16) {
    const chunk = images.slice(i, i + 16);
    const { probabilities, novelty } = m.answers(chunk);
    for (let k = 0; k < chunk.length; ++k) out.rows.push(probabilities.slice(k * labels, (k + 1) * labels));
    out.novelty.push(...novelty);
  }
  return out;
}

/** What train() would report as trainable parameters for each part, counted on a copy of the model. */
function trainable(r: TrainableRequest): Record<TrainPart, number | null> {
  const copy = need(tagnet, 'the engine').loadModel(need(model, 'a model').save());
  const count = (part: TrainPart) => {
    try {
      copy.setTrainable(CORE_PARTS[part]);
      return copy.info().trainableParams;
    } catch {
      return null;   // the model lacks that part
    }
  };
  try {
    if (r.newHead) copy.replaceHead(r.labels, r.multiLabel, { seed: 0 });
    return { head: count('head'), block: count('block'), all: count('all') };
  } finally {
    copy.delete();
  }
}

async function train(r: TrainRequest, progress: (p: TrainProgress) => void): Promise<TrainResult> {
  const m = need(model, 'a model');
  const before = m.save();
  if (r.examples.length === 0) throw new Error('add some pictures to train on first');
  const t0 = performance.now();
  if (r.newHead) m.replaceHead(r.labels, r.multiLabel, { seed: r.options.seed ?? 0 });
  const info = m.info();
  if (info.labels.length !== r.labels.length || info.labels.some((l, i) => l !== r.labels[i])) {
    throw new Error(`the model's labels (${info.labels.join(', ')}) are not the ones to train`);
  }
  m.setTrainable(CORE_PARTS[r.part]);
  const trainableParams = m.info().trainableParams;
  const trainer = m.createTrainer(r.options);
  const stop = stopping();
  let steps = 0;
  try {
    for (const ex of r.examples) trainer.addExample(ex.rgba, ex.width, ex.height, ex.target);
    await yieldToMessages();
    if (!stop.aborted) {
      await trainer.fit((_step, _steps, _loss, _accuracy, s) => {
        ++steps;
        progress({
          epoch: s.epoch, epochs: trainer.options.epochs, step: s.step, steps: s.steps,
          loss: s.loss, accuracy: s.accuracy, epochEnd: s.epochEnd, elapsedMs: performance.now() - t0,
        });
      }, { signal: stop });
    }
  } finally {
    trainer.delete();
  }
  const stopped = stop.aborted;
  if (steps === 0) {
    // Nothing trained: a replaced head would be random, so the model goes back to what it was.
    const restored = load(before);
    return { bytes: before, info: restored, stopped, reverted: true, steps, elapsedMs: performance.now() - t0,
             trainableParams };
  }
  const epochsDone = stopped ? undefined : trainer.options.epochs;
  m.recordFineTuning({
    examples: r.examples.length, steps, epochs: epochsDone ?? null, stopped, part: r.part,
    new_head: r.newHead, lr: r.options.lr ?? 1e-3, batch_size: r.options.batchSize ?? 32,
    augment: r.options.augment ?? null, trainable_params: trainableParams,
  }, r.multiLabel && r.combinations.length ? r.combinations : null);
  return { bytes: m.save(), info: m.info(), stopped, reverted: false, steps, elapsedMs: performance.now() - t0,
           trainableParams };
}

// The few-picture recipe of the core (tagnet/train/teach.h); 'stop' ends it between pieces of work
// and keeps the model as it was.
async function teach(r: TeachRequest, progress: (p: TeachProgress) => void): Promise<TeachResult> {
  const m = need(model, 'a model');
  if (r.pictures.length === 0) throw new Error('add some pictures to teach first');
  const t0 = performance.now();
  const teacher = m.createTeacher(r.labels, { onePerPicture: r.onePerPicture, seed: r.seed });
  const stop = stopping();
  try {
    for (const p of r.pictures) teacher.addPicture(p.rgba, p.width, p.height, p.labels);
    await yieldToMessages();
    if (stop.aborted || !await teacher.run(progress, { signal: stop })) {
      return { bytes: m.save(), info: m.info(), report: teacher.report(), stopped: true,
               elapsedMs: performance.now() - t0 };
    }
    // The core records the teaching in the taught model's card.
    const report = teacher.report();
    const taught = teacher.result();
    let bytes: Uint8Array;
    try {
      bytes = taught.save();
    } catch (e) {
      taught.delete();
      throw e;
    }
    model?.delete();
    model = taught;
    return { bytes, info: taught.info(), report, stopped: false, elapsedMs: performance.now() - t0 };
  } finally {
    teacher.delete();
  }
}

function errorOf(e: unknown): { name: string; message: string } {
  if (e instanceof Error) return { name: e.name, message: e.message };
  return { name: 'Error', message: String(e) };
}

async function handle(id: number, r: Request): Promise<void> {
  const reply = (result: unknown, transfer: Transferable[] = []) =>
    scope.postMessage({ id, kind: 'result', result } satisfies ResponseMessage, transfer);
  switch (r.type) {
    case 'init':
      return reply(await init(r));
    case 'load':
      return reply(load(r.bytes));
    case 'importOnnx': {
      const bytes = importOnnx(r.bytes, r.name);
      return reply(bytes, [bytes.buffer]);
    }
    case 'classify': {
      const result = classify(r.images);
      return reply(result, result.rows.map((p) => p.buffer));
    }
    case 'train': {
      const result = await train(r, (progress) =>
        scope.postMessage({ id, kind: 'progress', progress } satisfies ResponseMessage));
      return reply(result, [result.bytes.buffer]);
    }
    case 'trainable':
      return reply(trainable(r));
    case 'teach': {
      const result = await teach(r, (progress) =>
        scope.postMessage({ id, kind: 'progress', progress } satisfies ResponseMessage));
      return reply(result, [result.bytes.buffer]);
    }
    case 'stop':
      stopController.abort();
      return reply(true);
  }
}

let queue: Promise<void> = Promise.resolve();

scope.onmessage = (event) => {
  const { id, request } = event.data;
  const run = () => handle(id, request).catch((e) =>
    scope.postMessage({ id, kind: 'error', error: errorOf(e) } satisfies ResponseMessage));
  if (request.type === 'stop') {
    void run();
  } else {
    queue = queue.then(run);
  }
};
