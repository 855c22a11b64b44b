// tagnet's kernels as compiled for the page (Highway's WASM target) against the reference
// kernels, on one and two threads: tests/wasm_kernel_check.cpp, built beside the modules.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import { wasmDir } from './helpers.mjs';

test('the WASM kernels match the reference kernels', (t) => {
  const program = path.join(wasmDir, 'tagnet_wasm_kernel_check.js');
  assert.ok(fs.existsSync(program), `${program} is missing: build the wasm-release preset`);
  const run = spawnSync(process.execPath, ['--no-experimental-fetch', program],
                        { encoding: 'utf8', timeout: 300_000 });
  const lines = run.stdout.trim().split('\n');
  for (const line of lines) if (!line.startsWith('ok')) t.diagnostic(line);
  assert.equal(run.status, 0, `${lines.filter((l) => l.startsWith('FAIL')).join('\n')}\n${run.stderr}`);
  assert.match(lines[0], /^hwy target: WASM$/);
  assert.ok(lines.filter((l) => l.startsWith('ok')).length >= 60, 'every check ran');
});
