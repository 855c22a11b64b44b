// The page's service worker:
//  - keeps every file of the page (scripts, WebAssembly modules, the default model, the
//    example pictures) in a cache at install time and answers from it, so the page works with
//    no network after its first load;
//  - answers every request of the page with the Cross-Origin-Opener-Policy and
//    Cross-Origin-Embedder-Policy headers, so that on a static host that cannot send them the
//    page becomes crossOriginIsolated after one reload and the threaded build can run.
//
// This file stays free of imports: it is built to a plain script of its own (sw.js).

const sw = self as unknown as ServiceWorkerGlobalScope;

interface Manifest {
  version: string;
  /** Paths relative to the service worker's scope. */
  files: string[];
}

// The build replaces the placeholder with the JSON manifest of the files it wrote.
const MANIFEST: Manifest = JSON.parse('__TAGNET_PRECACHE__');
const CACHE = `tagnet-${MANIFEST.version}`;
const INDEX = 'index.html';

const ISOLATION_HEADERS: Record<string, string> = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

const scopeUrl = () => new URL(sw.registration.scope);

sw.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    // no-cache: revalidate with the server rather than copy a stale HTTP-cache entry.
    await cache.addAll(MANIFEST.files.map((f) => new Request(new URL(f, scopeUrl()), { cache: 'no-cache' })));
    await sw.skipWaiting();
  })());
});

sw.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith('tagnet-') && name !== CACHE) await caches.delete(name);
    }
    await sw.clients.claim();
  })());
});

function isolated(response: Response): Response {
  // Opaque responses cannot be rewrapped (and a page with these headers could not use them).
  if (response.status === 0 || response.type === 'opaqueredirect') return response;
  const headers = new Headers(response.headers);
  for (const [k, v] of Object.entries(ISOLATION_HEADERS)) headers.set(k, v);
  return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
}

async function respond(request: Request): Promise<Response> {
  const cache = await caches.open(CACHE);
  const url = new URL(request.url);
  let key: string | Request = request;
  if (request.mode === 'navigate' && url.pathname.endsWith('/')) key = new URL(INDEX, url).href;
  const cached = await cache.match(key, { ignoreSearch: request.mode === 'navigate' });
  if (cached) return isolated(cached);
  // Chromium's developer tools send only-if-cached requests that fetch() would reject as they
  // are; the page's files are answered from the cache above, anything else is fetched plainly.
  const forward = request.cache === 'only-if-cached' && request.mode !== 'same-origin' ? request.url : request;
  try {
    return isolated(await fetch(forward));
  } catch (error) {
    // Offline and not a file of the page: a navigation still gets the page itself.
    if (request.mode === 'navigate') {
      const page = await cache.match(new URL(INDEX, scopeUrl()).href);
      if (page) return isolated(page);
    }
    throw error;
  }
}

sw.addEventListener('fetch', (event) => {
  const request = event.request;
  if (request.method !== 'GET') return;
  if (new URL(request.url).origin !== sw.location.origin) return;
  event.respondWith(respond(request));
});

sw.addEventListener('message', (event) => {
  if (event.data === 'version') event.source?.postMessage({ version: MANIFEST.version, cache: CACHE });
});
