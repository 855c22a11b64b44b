// ONNX out and in: tagnet's exported files run in ONNX Runtime (onnxruntime-node, pinned in
// wasm/package-lock.json) as natively in tagnet, and the module imports them with the same
// outputs; bad ONNX bytes give one-line TagnetErrors and leave the module working.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import * as ort from 'onnxruntime-node';

import { TagnetError } from '../tagnet.js';
import { describeVariants, loadReference, maxAbsDiff } from './helpers.mjs';

const TOLERANCE = 1e-4;

// (N, H, W, C) -> (N, C, H, W)
function nchw(x, [N, H, W, C]) {
  const out = new Float32Array(x.length);
  for (let n = 0; n < N; ++n)
    for (let h = 0; h < H; ++h)
      for (let w = 0; w < W; ++w)
        for (let c = 0; c < C; ++c) out[((n * C + c) * H + h) * W + w] = x[((n * H + h) * W + w) * C + c];
  return out;
}

test('tagnet export runs in ONNX Runtime with tagnet\'s outputs', async () => {
  const ref = loadReference();
  for (const m of ref.json.onnx) {
    const session = await ort.InferenceSession.create(path.join(ref.dir, m.onnx));
    assert.deepEqual(session.inputNames, ['input']);
    assert.deepEqual(session.outputNames, ['output']);
    const bytes = fs.readFileSync(path.join(ref.dir, m.input));
    const x = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
    const N = m.pictures.length;
    const [H, W, C] = m.inputShape;
    // The batch dimension is dynamic: all pictures at once, then one alone.
    const all = await session.run({ input: new ort.Tensor('float32', nchw(x, [N, H, W, C]), [N, C, H, W]) });
    let worst = 0;
    m.outputs.forEach((want, i) => {
      worst = Math.max(worst, maxAbsDiff(all.output.data.subarray(i * want.length, (i + 1) * want.length), want));
    });
    const one = await session.run({ input: new ort.Tensor('float32', nchw(x.subarray(0, H * W * C), [1, H, W, C]), [1, C, H, W]) });
    worst = Math.max(worst, maxAbsDiff(one.output.data, m.outputs[0]));
    console.log(`ONNX Runtime vs tagnet, ${m.name}: largest difference ${worst.toExponential(3)}`);
    assert.ok(worst < TOLERANCE, `${m.name}: ${worst}`);
  }
});

describeVariants('ONNX in the module', (env) => {
  test('importOnnx gives the native outputs, and exportOnnx round-trips', () => {
    for (const m of env.ref.json.onnx) {
      const bytes = fs.readFileSync(path.join(env.ref.dir, m.onnx));
      const model = env.tagnet.importOnnx(bytes, { name: m.onnx });
      try {
        const info = model.info();
        assert.deepEqual(info.labels, m.labels);
        assert.deepEqual(info.inputShape, m.inputShape);
        let worst = 0;
        for (const [i, want] of m.outputs.entries()) {
          const p = env.ref.picture(m.pictures[i]);
          worst = Math.max(worst, maxAbsDiff(model.classify(p.rgba, p.width, p.height), want));
        }
        console.log(`module importOnnx vs native, ${m.name}: largest difference ${worst.toExponential(3)}`);
        assert.ok(worst < TOLERANCE, `${m.name}: ${worst}`);
        const again = env.tagnet.importOnnx(model.exportOnnx({ opset: 17 }));
        try {
          const p = env.ref.picture('large');
          assert.deepEqual(again.classify(p.rgba, p.width, p.height), model.classify(p.rgba, p.width, p.height));
        } finally {
          again.delete();
        }
      } finally {
        model.delete();
      }
    }
  });

  test('bad ONNX bytes give one-line errors and the module keeps working', () => {
    const good = fs.readFileSync(path.join(env.ref.dir, env.ref.json.onnx[0].onnx));
    const fails = (bytes, name, pattern) => {
      assert.throws(() => env.tagnet.importOnnx(bytes, { name }), (e) => {
        assert.ok(e instanceof TagnetError, `${e}`);
        assert.ok(e.message.startsWith(`${name}: `), e.message);
        assert.ok(!e.message.includes('\n'), e.message);
        assert.match(e.message, pattern);
        return true;
      });
    };
    fails(good.subarray(0, good.length >> 1), 'half.onnx', /truncated/);
    fails(new Uint8Array(0), 'empty.onnx', /empty/);
    // Every op named "Relu" renamed "Tanh": an op tagnet does not map, named with its node.
    const renamed = Buffer.from(good);
    for (let i = renamed.indexOf('Relu'); i >= 0; i = renamed.indexOf('Relu', i + 1)) renamed.write('Tanh', i);
    fails(renamed, 'tanh.onnx', /Tanh node '.*': is not supported; tagnet imports Conv/);
    let seed = 3;
    const rand = (n) => ((seed = (seed * 1103515245 + 12345) >>> 0) % n);
    for (let i = 0; i < 200; ++i) {
      const noise = new Uint8Array(1 + rand(3000)).map(() => rand(256));
      fails(noise, 'noise.onnx', /./);
    }
    for (let i = 0; i < 200; ++i) {
      const cut = good.subarray(0, rand(good.length));
      fails(cut, 'cut.onnx', /./);
    }
    const model = env.tagnet.importOnnx(good, { name: 'good.onnx' });
    assert.equal(model.info().labels.length, env.ref.json.onnx[0].labels.length);
    model.delete();
  });
});
