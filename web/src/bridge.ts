// A promise-based handle on the engine worker (worker.ts).
//
//   const engine = new EngineBridge(new URL('wasm/', document.baseURI));
//   await engine.init();
//   const info = await engine.load(bytes);
//   const [probs] = await engine.classify([{ rgba, width, height }]);
//
// cancel() terminates the worker: whatever it was doing is abandoned, pending calls reject with
// CancelledError, and the next call starts a new worker with the same engine options and the
// page's current model (options.currentModel: the page keeps the one copy of its bytes).
import type {
  ClassifyResult, InitRequest, InitResult, LoadedModel, Request, Results, RequestMessage, ResponseMessage, RgbaImage,
  TeachRequest, TeachResult, TrainableRequest, TrainProgress, TrainRequest, TrainResult,
} from './protocol';
import type { TeachProgress, Variant } from './tagnet-types';

type Progress = TrainProgress | TeachProgress;

export class CancelledError extends Error {
  constructor() {
    super('cancelled');
    this.name = 'CancelledError';
  }
}

/** An error the engine reported (its message says what went wrong). */
export class EngineError extends Error {
  constructor(name: string, message: string) {
    super(message);
    this.name = name;
  }
}

interface Pending {
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
  onProgress?: (p: Progress) => void;
}

export class EngineBridge {
  private worker: Worker | null = null;
  private nextId = 1;
  private pending = new Map<number, Pending>();
  private initOptions: InitRequest;
  private currentModel: () => Uint8Array | null;
  private restoring: Promise<void> | null = null;

  constructor(wasmBase: URL, options: { variant?: Variant; threads?: number;
                                        currentModel?: () => Uint8Array | null } = {}) {
    const { currentModel, ...engine } = options;
    this.initOptions = { wasmBase: wasmBase.href, ...engine };
    this.currentModel = currentModel ?? (() => null);
  }

  /** Loads and starts the WebAssembly module in a new worker. */
  async init(): Promise<InitResult> {
    return this.call('init', { type: 'init', ...this.initOptions });
  }

  /** Makes `bytes` the current model; rejects (keeping the old one) when they are not a model. */
  load(bytes: Uint8Array): Promise<LoadedModel> {
    return this.call('load', { type: 'load', bytes: bytes.slice() });
  }

  /**
   * An ONNX file as .tagnet bytes, converted by the module (the current model is unchanged);
   * rejects with a one-line error starting with `name` for a graph tagnet cannot run.
   */
  importOnnx(bytes: Uint8Array, name: string): Promise<Uint8Array> {
    return this.call('importOnnx', { type: 'importOnnx', bytes: bytes.slice(), name });
  }

  /** One row of probabilities per picture. The pictures' buffers are not transferred. */
  async classify(images: RgbaImage[]): Promise<Float32Array[]> {
    return (await this.classifyWithNovelty(images)).rows;
  }

  /** The probabilities and how unlike the model's training pictures each picture is. */
  classifyWithNovelty(images: RgbaImage[]): Promise<ClassifyResult> {
    return this.call('classify', { type: 'classify', images });
  }

  /** Fine-tunes the current model; the result becomes the current model. The pictures are copied. */
  train(request: TrainRequest, onProgress: (p: TrainProgress) => void): Promise<TrainResult> {
    return this.call('train', { type: 'train', ...request }, [], (p) => onProgress(p as TrainProgress));
  }

  /** Teaches the current model new labels (the core's few-picture recipe); the result becomes the current model. */
  teach(request: TeachRequest, onProgress: (p: TeachProgress) => void): Promise<TeachResult> {
    return this.call('teach', { type: 'teach', ...request }, [], (p) => onProgress(p as TeachProgress));
  }

  /** The parameters each part would train in a training of `request`, as the core counts them. */
  trainable(request: TrainableRequest): Promise<Results['trainable']> {
    return this.call('trainable', { type: 'trainable', ...request });
  }

  /** Asks a running training to stop after its current batch. */
  async stop(): Promise<void> {
    if (this.worker) await this.call('stop', { type: 'stop' });
  }

  /** Terminates the worker at once; pending calls reject with CancelledError. */
  cancel(): void {
    this.worker?.terminate();
    this.worker = null;
    this.restoring = null;
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const p of pending) p.reject(new CancelledError());
  }

  /** Whether a worker is running. */
  get running(): boolean {
    return this.worker !== null;
  }

  private spawn(): Worker {
    const worker = new Worker(new URL('./worker.ts', import.meta.url), { name: 'tagnet-engine' });
    worker.onmessage = (event: MessageEvent<ResponseMessage>) => {
      const m = event.data;
      const p = this.pending.get(m.id);
      if (!p) return;
      if (m.kind === 'progress') {
        p.onProgress?.(m.progress);
        return;
      }
      this.pending.delete(m.id);
      if (m.kind === 'result') p.resolve(m.result);
      else p.reject(new EngineError(m.error.name, m.error.message));
    };
    worker.onerror = (event) => {
      event.preventDefault();
      const error = new EngineError('WorkerError', event.message || 'the engine worker failed to start');
      const pending = [...this.pending.values()];
      this.pending.clear();
      this.worker?.terminate();
      this.worker = null;
      for (const p of pending) p.reject(error);
    };
    return worker;
  }

  private send(request: Request, transfer: Transferable[] = [],
               onProgress?: (p: Progress) => void): Promise<unknown> {
    if (!this.worker) this.worker = this.spawn();
    const id = this.nextId++;
    const worker = this.worker;
    return new Promise<unknown>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, onProgress });
      worker.postMessage({ id, request } satisfies RequestMessage, transfer);
    });
  }

  private async call<K extends keyof Results>(_kind: K, request: Request & { type: K },
                                              transfer: Transferable[] = [],
                                              onProgress?: (p: Progress) => void): Promise<Results[K]> {
    // A worker started after cancel() gets the engine and the model back before anything else.
    if (!this.worker && request.type !== 'init' && request.type !== 'stop') {
      if (!this.restoring) {
        const bytes = this.currentModel();
        this.restoring = (async () => {
          await this.send({ type: 'init', ...this.initOptions });
          if (bytes) await this.send({ type: 'load', bytes: bytes.slice() });
        })();
      }
      const restoring = this.restoring;
      try {
        await restoring;
      } finally {
        if (this.restoring === restoring) this.restoring = null;
      }
    } else if (this.restoring) {
      await this.restoring;
    }
    return this.send(request, transfer, onProgress) as Promise<Results[K]>;
  }
}
