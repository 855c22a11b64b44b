// Shared set-up of the WASM tests: where the built modules and the native reference program
// are, the reference data they compare against, and small numeric helpers.
//
// Environment (all optional; scripts in wasm/run-tests.sh set them):
//   TAGNET_WASM_DIR            directory with tagnet-simd*.mjs/.wasm (build/wasm-release/wasm)
//   TAGNET_WASM_REFERENCE      the native tagnet_wasm_reference program
//   TAGNET_WASM_REFERENCE_DIR  output of `tagnet_wasm_reference make`, made once per run
//   TAGNET_WASM_VARIANTS       comma-separated variants to test (simd,simd-threads)
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { createTagnet } from '../tagnet.js';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '../..');

export const wasmDir = process.env.TAGNET_WASM_DIR ??
                       path.join(repoRoot, 'build/wasm-release/wasm');

export const variants = (process.env.TAGNET_WASM_VARIANTS ?? 'simd,simd-threads')
  .split(',').map((s) => s.trim()).filter(Boolean);

export function referenceProgram() {
  if (process.env.TAGNET_WASM_REFERENCE) return process.env.TAGNET_WASM_REFERENCE;
  for (const preset of ['native-release', 'native-noxnnpack']) {
    const p = path.join(repoRoot, 'build', preset, 'tagnet_wasm_reference');
    if (fs.existsSync(p)) return p;
  }
  throw new Error('tagnet_wasm_reference not found: build it natively ' +
                  '(cmake --build --preset native-release --target tagnet_wasm_reference) ' +
                  'or set TAGNET_WASM_REFERENCE');
}

let reference = null;

// {dir, json, picture(name) -> {rgba, width, height}, modelBytes(name)}
export function loadReference() {
  if (reference) return reference;
  let dir = process.env.TAGNET_WASM_REFERENCE_DIR;
  if (!dir) {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tagnet-wasm-ref-'));
    execFileSync(referenceProgram(), ['make', dir], { stdio: 'inherit' });
    process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  }
  const json = JSON.parse(fs.readFileSync(path.join(dir, 'reference.json'), 'utf8'));
  const pictures = new Map();
  for (const p of json.pictures) {
    pictures.set(p.name, {
      rgba: new Uint8Array(fs.readFileSync(path.join(dir, p.file))),
      width: p.width,
      height: p.height,
      file: path.join(dir, p.file),
    });
  }
  reference = {
    dir,
    json,
    picture: (name) => pictures.get(name),
    model: (name) => json.models.find((m) => m.name === name),
    modelBytes: (name) => new Uint8Array(fs.readFileSync(path.join(dir, `${name}.tagnet`))),
  };
  return reference;
}

// Outputs of the native build for a model file and a picture.
export function nativeClassify(modelFile, picture) {
  const out = execFileSync(referenceProgram(),
                           ['classify', modelFile, picture.file, String(picture.width),
                            String(picture.height)], { encoding: 'utf8' });
  return JSON.parse(out).probs;
}

export function openTagnet(variant, threads = 2) {
  return createTagnet({ variant, threads, baseUrl: pathToFileURL(wasmDir + path.sep) });
}

export function maxAbsDiff(a, b) {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; ++i) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

// A deterministic RGBA picture: smooth colour fields plus a class-dependent pattern.
export function syntheticPicture(width, height, seed, klass = 0) {
  const rgba = new Uint8Array(width * height * 4);
  let s = (seed * 2654435761) >>> 0;
  const rand = () => ((s = (s * 1664525 + 1013904223) >>> 0) / 4294967296);
  for (let y = 0; y < height; ++y) {
    for (let x = 0; x < width; ++x) {
      const i = (y * width + x) * 4;
      const band = klass === 0 ? x / width : klass === 1 ? y / height : ((x + y) % 16) / 16;
      const noise = (rand() - 0.5) * 60;
      rgba[i] = Math.max(0, Math.min(255, 255 * band + noise));
      rgba[i + 1] = Math.max(0, Math.min(255, 128 + 100 * Math.sin(klass * 2 + x / 5) + noise));
      rgba[i + 2] = Math.max(0, Math.min(255, 80 * klass + noise));
      rgba[i + 3] = 255;
    }
  }
  return rgba;
}

// describe(`${title} (${variant})`) for each variant, the module and the reference data opened
// before its tests run: body(env, variant) reads env.tagnet and env.ref inside its tests.
export function describeVariants(title, body) {
  for (const variant of variants) {
    describe(`${title} (${variant})`, () => {
      const env = { tagnet: null, ref: null };
      before(async () => {
        env.ref = loadReference();
        env.tagnet = await openTagnet(variant);
      });
      after(() => env.tagnet?.dispose());
      body(env, variant);
    });
  }
}
