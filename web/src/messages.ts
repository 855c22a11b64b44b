// Messages to the user and the loading bar that shows while the engine works.
import { byId, h } from './dom';
import { state } from './state';

export type Progress = (fraction: number | null, text?: string) => void;

export function showMessage(text: string, kind: 'error' | 'info' = 'error'): void {
  const box = byId('messages');
  const item = h('p', { class: `message ${kind}` }, h('span', { class: 'message-text', text }),
    h('button', { type: 'button', class: 'dismiss', 'aria-label': 'Dismiss message', text: '×',
      onclick: () => item.remove() }));
  box.append(item);
  if (kind === 'info') setTimeout(() => item.remove(), 8000);
}

export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Shows the loading bar while `work` runs; `cancellable` offers a Cancel button that ends the worker. */
export async function busy<T>(text: string, work: (progress: Progress) => Promise<T>, cancellable = false): Promise<T> {
  const box = byId('loading');
  const bar = byId<HTMLProgressElement>('loading-bar');
  const label = byId('loading-text');
  const cancel = byId<HTMLButtonElement>('loading-cancel');
  ++state.busyDepth;
  box.classList.add('active');
  label.textContent = text;
  bar.removeAttribute('value');
  cancel.hidden = !cancellable;
  const progress: Progress = (fraction, t) => {
    if (fraction === null) bar.removeAttribute('value');
    else bar.value = fraction;
    if (t) label.textContent = t;
  };
  try {
    return await work(progress);
  } finally {
    if (--state.busyDepth === 0) {
      box.classList.remove('active');
      cancel.hidden = true;
      label.textContent = '';
    }
  }
}

export function wireBusy(): void {
  byId('loading-cancel').addEventListener('click', () => state.engine.cancel());
}
