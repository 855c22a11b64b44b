// Registers the service worker (sw.ts), which caches the page for offline use and adds the
// COOP/COEP headers. A server that sends those headers itself (`tagnet serve`) makes the page
// crossOriginIsolated from the first load; on a static host that cannot, the page reloads once
// when the service worker takes control, and is isolated from then on.

export type Isolation =
  /** SharedArrayBuffer is available: the threaded build can run. */
  | 'isolated'
  /** The page is reloading to come back isolated: do nothing more. */
  | 'reloading'
  /** Not isolated and no way to be (no service worker, or it did not help). */
  | 'unavailable';

const RELOAD_FLAG = 'tagnet-isolation-reload';

export interface ServiceWorkerState {
  isolation: Isolation;
  /** Resolves true once the service worker is active (every file cached), false if it never will be. */
  offlineReady: Promise<boolean>;
}

function controllerChange(timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    navigator.serviceWorker.addEventListener('controllerchange', () => {
      clearTimeout(timer);
      resolve(true);
    }, { once: true });
  });
}

// Whether the registration's service worker gets to work: true once one is active (its install
// cached every file), false when the new one fails (a file could not be fetched).
function activated(registration: ServiceWorkerRegistration): Promise<boolean> {
  if (registration.active) return Promise.resolve(true);
  return new Promise((resolve) => {
    const watch = (worker: ServiceWorker | null) => {
      worker?.addEventListener('statechange', () => {
        if (worker.state === 'activated') resolve(true);
        else if (worker.state === 'redundant' && !registration.active) resolve(false);
      });
    };
    watch(registration.installing ?? registration.waiting);
    registration.addEventListener('updatefound', () => watch(registration.installing));
  });
}

export async function setUpServiceWorker(enabled: boolean): Promise<ServiceWorkerState> {
  const isolatedNow = globalThis.crossOriginIsolated === true;
  if (!enabled || !('serviceWorker' in navigator) || !window.isSecureContext) {
    return { isolation: isolatedNow ? 'isolated' : 'unavailable', offlineReady: Promise.resolve(false) };
  }
  let registration: ServiceWorkerRegistration;
  try {
    registration = await navigator.serviceWorker.register('./sw.js');
  } catch {
    return { isolation: isolatedNow ? 'isolated' : 'unavailable', offlineReady: Promise.resolve(false) };
  }
  const offlineReady = activated(registration);
  if (isolatedNow) {
    sessionStorage.removeItem(RELOAD_FLAG);
    return { isolation: 'isolated', offlineReady };
  }
  // One reload per session at most: if the headers did not help, run without threads.
  if (sessionStorage.getItem(RELOAD_FLAG)) {
    return { isolation: 'unavailable', offlineReady };
  }
  if (!navigator.serviceWorker.controller) {
    // The first visit: wait until the new service worker controls the page (it caches every
    // file first, a few megabytes). On a slow network, run without threads this time rather
    // than keep the page waiting; the next visit is isolated.
    const claimed = await controllerChange(10_000);
    if (!claimed) return { isolation: 'unavailable', offlineReady };
  }
  sessionStorage.setItem(RELOAD_FLAG, '1');
  location.reload();
  return { isolation: 'reloading', offlineReady };
}
