// What the page keeps across reloads, in IndexedDB: the current model file, the teaching
// examples (pictures as PNG with their labels) and the teaching settings.
import type { TrainPart } from './protocol';

export interface StoredModel {
  bytes: Uint8Array;
  /** File name shown to the user and used for downloads. */
  name: string;
  source: 'default' | 'file' | 'fine-tuned';
  savedAt: number;
}

export interface StoredExample {
  id?: number;
  blob: Blob;
  name: string;
  labels: string[];
  addedAt: number;
}

export interface TeachSettings {
  mode: 'multi' | 'single';
  labels: string[];
  part: TrainPart;
  epochs: number;
  lr: number;
  batchSize: number;
  augment: boolean;
  threshold: number | null;
}

const DB_NAME = 'tagnet';
const VERSION = 1;

function promised<T>(request: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error ?? new Error('IndexedDB request failed'));
  });
}

function done(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error ?? new Error('IndexedDB transaction failed'));
    tx.onabort = () => reject(tx.error ?? new Error('IndexedDB transaction aborted'));
  });
}

export class Store {
  // Ids of examples when nothing is stored: negative, so they never clash with stored ones.
  private memoryId = -1;

  private constructor(private db: IDBDatabase | null) {}

  /** Opens the database; without IndexedDB (private modes of some browsers) nothing is kept. */
  static async open(): Promise<Store> {
    if (typeof indexedDB === 'undefined') return new Store(null);
    try {
      const request = indexedDB.open(DB_NAME, VERSION);
      request.onupgradeneeded = () => {
        const db = request.result;
        if (!db.objectStoreNames.contains('models')) db.createObjectStore('models');
        if (!db.objectStoreNames.contains('examples')) db.createObjectStore('examples', { keyPath: 'id', autoIncrement: true });
        if (!db.objectStoreNames.contains('settings')) db.createObjectStore('settings');
      };
      return new Store(await promised(request));
    } catch {
      return new Store(null);
    }
  }

  get persistent(): boolean {
    return this.db !== null;
  }

  private async get<T>(store: string, key: IDBValidKey): Promise<T | undefined> {
    if (!this.db) return undefined;
    return promised(this.db.transaction(store).objectStore(store).get(key)) as Promise<T | undefined>;
  }

  private async put(store: string, value: unknown, key?: IDBValidKey): Promise<IDBValidKey | undefined> {
    if (!this.db) return undefined;
    const tx = this.db.transaction(store, 'readwrite');
    const request = tx.objectStore(store).put(value, key);
    await done(tx);
    return request.result;
  }

  async model(): Promise<StoredModel | undefined> {
    return this.get<StoredModel>('models', 'current');
  }

  async saveModel(m: StoredModel): Promise<void> {
    await this.put('models', m, 'current');
  }

  async clearModel(): Promise<void> {
    if (!this.db) return;
    const tx = this.db.transaction('models', 'readwrite');
    tx.objectStore('models').delete('current');
    await done(tx);
  }

  async examples(): Promise<StoredExample[]> {
    if (!this.db) return [];
    return promised(this.db.transaction('examples').objectStore('examples').getAll()) as Promise<StoredExample[]>;
  }

  /** Stores a new example and returns its id. */
  async addExample(e: StoredExample): Promise<number> {
    if (!this.db) return this.memoryId--;
    const { id: _unused, ...rest } = e;
    return (await this.put('examples', rest)) as number;
  }

  async updateExample(e: StoredExample): Promise<void> {
    if (e.id === undefined || e.id < 0) return;
    // Only the stored fields: callers pass objects that also hold page state (object URLs).
    const { id, blob, name, labels, addedAt } = e;
    await this.put('examples', { id, blob, name, labels, addedAt });
  }

  async deleteExamples(ids: number[]): Promise<void> {
    if (!this.db) return;
    const tx = this.db.transaction('examples', 'readwrite');
    for (const id of ids) if (id >= 0) tx.objectStore('examples').delete(id);
    await done(tx);
  }

  async settings(): Promise<Partial<TeachSettings>> {
    return (await this.get<Partial<TeachSettings>>('settings', 'teach')) ?? {};
  }

  async saveSettings(s: TeachSettings): Promise<void> {
    await this.put('settings', s, 'teach');
  }
}
