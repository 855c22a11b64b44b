// Messages to the user and the loading bar that shows while the engine works.
//
// An error is one banner per distinct problem: the same text never stands twice, each banner
// has a close button, and the banners of a topic ('classify', 'model', 'training', ...) go
// when the user does that thing again: the next attempt either works or says what is wrong now.
import { byId, h } from './dom';
import { state } from './state';

export type Progress = (fraction: number | null, text?: string) => void;

function banner(text: string, kind: 'error' | 'info', topic: string): HTMLElement {
  const item = h('div', { class: `message ${kind}`, 'data-topic': topic },
    h('span', { class: 'message-text', text }),
    h('button', { type: 'button', class: 'dismiss', 'aria-label': 'Dismiss message', text: '×',
      onclick: () => item.remove() }));
  return item;
}

function existing(text: string): HTMLElement | undefined {
  return [...byId('messages').querySelectorAll<HTMLElement>('.message')]
    .find((m) => m.querySelector('.message-text')?.textContent === text);
}

/** Shows an error until it is dismissed or its topic is cleared; the same text only once. */
export function showError(text: string, topic = 'page'): void {
  const old = existing(text);
  if (old) {
    old.dataset.topic = topic;
    old.classList.remove('again');
    void old.offsetWidth;   // restarts the highlight of a repeated problem
    old.classList.add('again');
    return;
  }
  byId('messages').append(banner(text, 'error', topic));
}

/** A passing notice: it leaves by itself after a few seconds. */
export function showInfo(text: string): void {
  if (existing(text)) return;
  const item = banner(text, 'info', 'info');
  byId('messages').append(item);
  setTimeout(() => item.remove(), 8000);
}

/** Removes the errors of `topic`: the problem they described is gone or is being tried again. */
export function clearErrors(topic: string): void {
  byId('messages').querySelectorAll<HTMLElement>('.message.error').forEach((m) => {
    if (m.dataset.topic === topic) m.remove();
  });
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
