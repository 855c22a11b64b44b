// What the page keeps across reloads, in IndexedDB: the current model file, the teaching
// pictures (as PNG, each with its card) and the teaching cards and settings.
import type { TrainPart } from './protocol';
import type { TeachReport } from './tagnet-types';

export interface StoredModel {
  bytes: Uint8Array;
  /** File name shown to the user and used for downloads. */
  name: string;
  source: 'default' | 'file' | 'fine-tuned';
  savedAt: number;
  /** Trained just now and not kept yet: the user may still go back to the previous model. */
  trial?: boolean;
}

/** A card of the Teach section: one label being taught. */
export interface TeachCard {
  id: number;
  name: string;
  /** The card of pictures with none of the labels (multi-label): it has no label of its own. */
  none?: boolean;
}

export interface StoredExample {
  id?: number;
  blob: Blob;
  name: string;
  /** The card the picture was added to: its label. */
  card: number;
  /** The other cards whose labels the user gave it too (used with several labels per picture). */
  extra: number[];
  addedAt: number;
}

export interface TeachSettings {
  mode: 'multi' | 'single';
  cards: TeachCard[];
  nextCardId: number;
  part: TrainPart;
  epochs: number;
  lr: number;
  batchSize: number;
  augment: boolean;
  threshold: number | null;
}

/** The last training as the page showed it: its chart and its before/after table. */
export interface StoredRun {
  /** Loss and accuracy after each batch, against epochs (2.5: half-way through the third). */
  x: number[];
  loss: number[];
  accuracy: number[];
  rows: { name: string; blob: Blob; taught: string; before: string; after: string }[];
  /** What the training did, in one line. */
  text: string;
  /** A teaching's held-out accuracy per label and its warnings. */
  report?: TeachReport;
}

/** The teaching pictures and settings, and what became of a state kept by the page's old layout. */
export interface StoredTeach {
  settings: Partial<TeachSettings>;
  examples: StoredExample[];
  /** 'migrated': pictures labelled with lists of label names were sorted into cards; 'dropped': unreadable. */
  old: 'migrated' | 'dropped' | null;
}

/**
 * The page's old layout kept one list of label names and each picture's names. Each label that a
 * picture has becomes a card; a picture goes to the card of its label added last (the one the
 * user was teaching) and keeps its other labels, so that its label set stays as it was.
 */
export function migrateTeach(settings: Record<string, unknown>, examples: Record<string, unknown>[]):
    { settings: Partial<TeachSettings>; examples: StoredExample[] } {
  const names = (v: unknown) => (Array.isArray(v) ? v.filter((l): l is string => typeof l === 'string') : []);
  const pictures = examples.filter((e) => e.blob instanceof Blob && typeof e.id === 'number');
  const order = [...new Set([...names(settings.labels), ...pictures.flatMap((e) => names(e.labels))])];
  const used = new Set(pictures.flatMap((e) => names(e.labels)));
  const cards: TeachCard[] = order.filter((l) => used.has(l)).map((name, i) => ({ id: i + 1, name }));
  const idOf = new Map(cards.map((c) => [c.name, c.id]));
  const mode = settings.mode === 'multi' ? 'multi' : 'single';
  let noneId = 0;
  const migrated = pictures.map((e): StoredExample => {
    const ids = names(e.labels).map((l) => idOf.get(l) as number).sort((a, b) => a - b);
    if (!ids.length && !noneId) {
      noneId = cards.length + 1;
      cards.push({ id: noneId, name: 'None of the labels', none: true });
    }
    const card = ids.length ? ids[ids.length - 1] : noneId;
    return { id: e.id as number, blob: e.blob as Blob, name: String(e.name ?? 'picture'), card,
             extra: mode === 'multi' ? ids.slice(0, -1) : [], addedAt: Number(e.addedAt) || Date.now() };
  });
  const { labels: _old, ...rest } = settings;
  return { settings: { ...(rest as Partial<TeachSettings>), mode, cards, nextCardId: cards.length + 1 }, examples: migrated };
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
    await this.delete('models', 'current');
  }

  /** The model used before the current one, kept bit for bit to go back to. */
  async previousModel(): Promise<StoredModel | undefined> {
    return this.get<StoredModel>('models', 'previous');
  }

  async savePreviousModel(m: StoredModel | null): Promise<void> {
    if (m) await this.put('models', m, 'previous');
    else await this.delete('models', 'previous');
  }

  private async delete(store: string, key: IDBValidKey): Promise<void> {
    if (!this.db) return;
    const tx = this.db.transaction(store, 'readwrite');
    tx.objectStore(store).delete(key);
    await done(tx);
  }

  /** The teaching cards, pictures and settings; a state of the old layout is migrated (or dropped). */
  async teach(): Promise<StoredTeach> {
    if (!this.db) return { settings: {}, examples: [], old: null };
    const settings = (await this.get<Record<string, unknown>>('settings', 'teach')) ?? {};
    const examples = await promised(this.db.transaction('examples').objectStore('examples').getAll()) as
      Record<string, unknown>[];
    const old = Array.isArray(settings.labels) || examples.some((e) => typeof e.card !== 'number');
    if (!old) {
      return { settings: settings as Partial<TeachSettings>, examples: examples as unknown as StoredExample[], old: null };
    }
    try {
      const m = migrateTeach(settings, examples);
      await this.replaceTeach(m.settings, m.examples);
      return { ...m, old: 'migrated' };
    } catch {
      await this.replaceTeach({}, []);
      return { settings: {}, examples: [], old: 'dropped' };
    }
  }

  private async replaceTeach(settings: Partial<TeachSettings>, examples: StoredExample[]): Promise<void> {
    if (!this.db) return;
    const tx = this.db.transaction(['settings', 'examples'], 'readwrite');
    tx.objectStore('settings').put(settings, 'teach');
    tx.objectStore('examples').clear();
    for (const e of examples) tx.objectStore('examples').put(e);
    await done(tx);
  }

  /** Stores a new example and returns its id. */
  async addExample(e: StoredExample): Promise<number> {
    if (!this.db) return this.memoryId--;
    const { id: _unused, blob, name, card, extra, addedAt } = e;
    return (await this.put('examples', { blob, name, card, extra: [...extra], addedAt })) as number;
  }

  async updateExample(e: StoredExample): Promise<void> {
    if (e.id === undefined || e.id < 0) return;
    // Only the stored fields: callers pass objects that also hold page state (object URLs).
    const { id, blob, name, card, extra, addedAt } = e;
    await this.put('examples', { id, blob, name, card, extra: [...extra], addedAt });
  }

  async deleteExamples(ids: number[]): Promise<void> {
    if (!this.db) return;
    const tx = this.db.transaction('examples', 'readwrite');
    for (const id of ids) if (id >= 0) tx.objectStore('examples').delete(id);
    await done(tx);
  }

  async lastRun(): Promise<StoredRun | undefined> {
    return this.get<StoredRun>('settings', 'last-run');
  }

  async saveLastRun(run: StoredRun | null): Promise<void> {
    if (run) await this.put('settings', run, 'last-run');
    else await this.delete('settings', 'last-run');
  }

  async saveSettings(s: TeachSettings): Promise<void> {
    await this.put('settings', { ...s, cards: s.cards.map((c) => ({ ...c })) }, 'teach');
  }
}
