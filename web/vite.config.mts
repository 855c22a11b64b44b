// Builds the page into dist/: the TypeScript front end (index.html, bench.html, the engine
// worker), the service worker as dist/sw.js, and, copied in as they are, the WebAssembly
// modules (wasm/), the default model (models/default.tagnet) and example pictures
// (examples/). The service worker gets the list of every file written, to cache at install.
//
// Inputs (environment variables, all optional):
//   TAGNET_WASM_DIR       tagnet.js and the module variants (default: web/wasm, where the
//                         wasm-release build copies them)
//   TAGNET_WEB_MODEL      the default model (default: web/model/default.tagnet)
//   TAGNET_WEB_EXAMPLES   folder of example pictures named like red_dress_01.jpg
//                         (default: build/web/model/fashion-color/examples)
//   TAGNET_WEB_MODEL_DESCRIPTION  what the default model knows, in a few words for the page
//                         ("clothing colours and kinds"), stored in its metadata as "description"
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { defineConfig, type Plugin, type ResolvedConfig } from 'vite';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..');

const wasmDir = path.resolve(process.env.TAGNET_WASM_DIR ?? path.join(here, 'wasm'));
const modelFile = path.resolve(process.env.TAGNET_WEB_MODEL ?? path.join(repo, 'web/model/default.tagnet'));
const examplesDir = path.resolve(process.env.TAGNET_WEB_EXAMPLES ?? path.join(repo, 'build/web/model/fashion-color/examples'));
const modelDescription = process.env.TAGNET_WEB_MODEL_DESCRIPTION ?? '';

// The default model with its description in its card, written by the module itself.
async function describedModel(): Promise<Uint8Array> {
  const bytes = fs.readFileSync(modelFile);
  if (!modelDescription) return bytes;
  const { createTagnet } = await import(pathToFileURL(path.join(wasmDir, 'tagnet.js')).href) as typeof import('../wasm/tagnet.js');
  const tagnet = await createTagnet({ variant: 'simd', baseUrl: pathToFileURL(wasmDir + path.sep) });
  const model = tagnet.loadModel(bytes);
  try {
    model.setDescription(modelDescription);
    return model.save();
  } finally {
    model.delete();
    tagnet.dispose();
  }
}

const WASM_FILES = [
  'tagnet.js',
  'tagnet-simd.mjs', 'tagnet-simd.wasm',
  'tagnet-simd-threads.mjs', 'tagnet-simd-threads.wasm', 'tagnet-simd-threads.worker.js',
];

interface Example {
  file: string;
  labels: string[];
}

// One picture per label combination: the first file of each "<labels>_NN" name.
function pickExamples(): Example[] {
  const seen = new Set<string>();
  const out: Example[] = [];
  for (const file of fs.readdirSync(examplesDir).sort()) {
    const m = /^(.+?)_(\d+)\.(jpe?g|png)$/i.exec(file);
    if (!m || seen.has(m[1])) continue;
    seen.add(m[1]);
    out.push({ file, labels: m[1].split('_') });
  }
  return out;
}

function requireInputs() {
  const missing = [
    ...WASM_FILES.map((f) => path.join(wasmDir, f)),
    modelFile,
    examplesDir,
  ].filter((f) => !fs.existsSync(f));
  if (missing.length) {
    throw new Error(`missing inputs of the page:\n  ${missing.join('\n  ')}\n` +
      'build them with web/run-tests.sh (or set TAGNET_WASM_DIR, TAGNET_WEB_MODEL, TAGNET_WEB_EXAMPLES)');
  }
}

function listFiles(dir: string, base = dir): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    return e.isDirectory() ? listFiles(full, base) : [path.relative(base, full).split(path.sep).join('/')];
  });
}

function tagnetAssets(): Plugin {
  let config: ResolvedConfig;
  return {
    name: 'tagnet-assets',
    enforce: 'post',
    configResolved(c) {
      config = c;
    },
    buildStart() {
      if (config.command === 'build' && !config.build.ssr) requireInputs();
    },
    // Development server: the same files under the same paths.
    configureServer(server) {
      server.middlewares.use((req, res, next) => {
        const url = new URL(req.url ?? '/', 'http://localhost');
        let file: string | null = null;
        if (url.pathname === '/models/default.tagnet') file = modelFile;
        else if (url.pathname === '/examples/index.json') {
          res.setHeader('Content-Type', 'application/json');
          res.end(JSON.stringify(pickExamples()));
          return;
        } else if (url.pathname.startsWith('/examples/')) file = path.join(examplesDir, path.basename(url.pathname));
        if (!file || !fs.existsSync(file)) return next();
        res.setHeader('Content-Type', file.endsWith('.tagnet') ? 'application/octet-stream' : 'image/jpeg');
        fs.createReadStream(file).pipe(res);
      });
    },
    async writeBundle() {
      const out = path.resolve(config.root, config.build.outDir);
      const copy = (from: string, to: string) => {
        fs.mkdirSync(path.dirname(path.join(out, to)), { recursive: true });
        fs.copyFileSync(from, path.join(out, to));
      };
      for (const f of WASM_FILES) copy(path.join(wasmDir, f), `wasm/${f}`);
      fs.mkdirSync(path.join(out, 'models'), { recursive: true });
      fs.writeFileSync(path.join(out, 'models/default.tagnet'), await describedModel());
      const examples = pickExamples();
      for (const e of examples) copy(path.join(examplesDir, e.file), `examples/${e.file}`);
      fs.writeFileSync(path.join(out, 'examples/index.json'), JSON.stringify(examples, null, 1) + '\n');

      // The service worker's manifest: every file but itself and the bench harness, and a
      // version that changes whenever any file does.
      const files = listFiles(out)
        .filter((f) => f !== 'sw.js' && f !== 'bench.html' && !f.startsWith('assets/bench-'))
        .sort();
      const hash = createHash('sha256');
      for (const f of files) hash.update(f).update(fs.readFileSync(path.join(out, f)));
      const manifest = { version: hash.digest('hex').slice(0, 16), files: ['./', ...files] };
      const swFile = path.join(out, 'sw.js');
      const sw = fs.readFileSync(swFile, 'utf8');
      const patched = sw.replace(/(["'`])__TAGNET_PRECACHE__\1/, JSON.stringify(JSON.stringify(manifest)));
      if (patched === sw) throw new Error('sw.js: the precache placeholder is missing');
      fs.writeFileSync(swFile, patched);
    },
  };
}

export default defineConfig({
  root: here,
  // Relative URLs: the page works from any folder of a static host.
  base: './',
  plugins: [tagnetAssets()],
  server: {
    headers: {
      'Cross-Origin-Opener-Policy': 'same-origin',
      'Cross-Origin-Embedder-Policy': 'require-corp',
    },
  },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    assetsInlineLimit: 0,
    reportCompressedSize: false,
    rollupOptions: {
      input: {
        index: path.join(here, 'index.html'),
        bench: path.join(here, 'bench.html'),
        sw: path.join(here, 'src/sw.ts'),
      },
      output: {
        entryFileNames: (chunk) => (chunk.name === 'sw' ? 'sw.js' : 'assets/[name]-[hash].js'),
      },
    },
  },
  worker: {
    format: 'iife',
  },
});
