// The WASM build reproduces the native build: same model file, same pictures, same
// probabilities (within 1e-4), for SmallerVGGNet, the Fashion-MNIST network and a one-logit
// head, in both module variants.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { loadReference, maxAbsDiff, openTagnet, variants } from './helpers.mjs';

const kTolerance = 1e-4;

for (const variant of variants) {
  describe(`native parity (${variant})`, () => {
    let tagnet;
    let ref;
    before(async () => {
      ref = loadReference();
      tagnet = await openTagnet(variant);
    });
    after(() => tagnet?.dispose());

    test('the engine runs tagnet\'s own kernels on the requested threads', () => {
      const threads = variant === 'simd-threads' ? 2 : 1;
      assert.equal(tagnet.variant, variant);
      assert.equal(tagnet.threads, threads);
      assert.equal(tagnet.engine, `backend hwy, WASM kernels, ${threads} thread${threads > 1 ? 's' : ''}`);
    });

    for (const name of ['smallervggnet', 'fashionnet', 'fashionnet_logit']) {
      test(`${name}: classify matches native outputs`, (t) => {
        const expected = ref.model(name);
        const model = tagnet.loadModel(ref.modelBytes(name));
        try {
          const info = model.info();
          assert.deepEqual(info.labels, expected.labels);
          assert.deepEqual(info.inputShape, expected.inputShape);
          assert.equal(info.architecture, expected.architecture);
          assert.equal(info.head, expected.head);
          assert.equal(info.params, expected.params);

          let worst = 0;
          for (const p of ref.json.pictures) {
            const pic = ref.picture(p.name);
            const got = model.classify(pic.rgba, pic.width, pic.height);
            const want = expected.outputs[p.name];
            assert.equal(got.length, expected.labels.length);
            const d = maxAbsDiff(got, want);
            worst = Math.max(worst, d);
            assert.ok(d <= kTolerance, `${name}/${p.name}: max |wasm - native| = ${d}`);
          }
          t.diagnostic(`${name}: max |wasm - native| = ${worst.toExponential(2)}`);

          // A batch of pictures of different sizes gives the single-picture results, row by row.
          const items = ref.json.pictures.map((p) => ref.picture(p.name));
          const batch = model.classifyBatch(items);
          const F = expected.labels.length;
          assert.equal(batch.length, items.length * F);
          ref.json.pictures.forEach((p, i) => {
            const d = maxAbsDiff(batch.subarray(i * F, (i + 1) * F), expected.outputs[p.name]);
            assert.ok(d <= kTolerance, `${name}/${p.name} in a batch: ${d}`);
          });
        } finally {
          model.delete();
        }
      });
    }

    test('save() gives bytes that load back to the same outputs', () => {
      const model = tagnet.loadModel(ref.modelBytes('fashionnet'));
      const again = tagnet.loadModel(model.save());
      try {
        const pic = ref.picture('large');
        assert.deepEqual(again.classify(pic.rgba, pic.width, pic.height),
                         model.classify(pic.rgba, pic.width, pic.height));
        assert.deepEqual(again.info().labels, model.info().labels);
      } finally {
        again.delete();
        model.delete();
      }
    });
  });
}
