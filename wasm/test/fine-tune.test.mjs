// Fine-tuning in WASM: a new head, frozen base, a few Adam steps lower the loss, and the saved
// model loads natively with the same outputs.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { loadReference, maxAbsDiff, nativeClassify, openTagnet, syntheticPicture,
         variants } from './helpers.mjs';

// Mean binary cross-entropy of the model's inference outputs over the examples (for a softmax
// head, the categorical cross-entropy): the training objective without dropout or
// augmentation noise, so before/after comparisons are deterministic.
function evalLoss(model, examples, multiLabel) {
  let sum = 0;
  for (const ex of examples) {
    const p = model.classify(ex.rgba, ex.width, ex.height);
    const eps = 1e-7;
    if (multiLabel) {
      let s = 0;
      for (let k = 0; k < p.length; ++k) {
        const q = Math.min(1 - eps, Math.max(eps, p[k]));
        s -= ex.labels[k] * Math.log(q) + (1 - ex.labels[k]) * Math.log(1 - q);
      }
      sum += s / p.length;
    } else {
      sum -= Math.log(Math.max(eps, p[ex.labels.indexOf(1)]));
    }
  }
  return sum / examples.length;
}

function examplesFor(count, width, height, labelsOf) {
  const out = [];
  for (let i = 0; i < count; ++i) {
    const klass = i % 3;
    out.push({ rgba: syntheticPicture(width, height, 1000 + i, klass), width, height,
               labels: labelsOf(klass) });
  }
  return out;
}

function tempFile(name) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tagnet-wasm-ft-'));
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  return path.join(dir, name);
}

// Native outputs of `bytes` (saved by WASM) for a picture equal the WASM outputs.
function assertNativeAgrees(t, tagnet, bytes, picture, name) {
  const file = tempFile(`${name}.tagnet`);
  fs.writeFileSync(file, bytes);
  const reloaded = tagnet.loadModel(bytes);
  try {
    const wasm = reloaded.classify(picture.rgba, picture.width, picture.height);
    const native = nativeClassify(file, picture);
    const d = maxAbsDiff(wasm, native);
    t.diagnostic(`${name}: fine-tuned model, max |wasm - native| = ${d.toExponential(2)}`);
    assert.ok(d <= 1e-4, `fine-tuned ${name}: max |wasm - native| = ${d}`);
  } finally {
    reloaded.delete();
  }
}

for (const variant of variants) {
  describe(`fine-tuning (${variant})`, () => {
    let tagnet;
    let ref;
    before(async () => {
      ref = loadReference();
      tagnet = await openTagnet(variant);
    });
    after(() => tagnet?.dispose());

    test('the fine-tuning policy is the native one', () => {
      // float32 fields, as the core holds them.
      const f = Math.fround;
      assert.deepEqual(tagnet.tutorialAugment(), { rotation: 25, widthShift: f(0.1), heightShift: f(0.1), shear: f(0.2),
                                                   zoom: f(0.2), hflip: true, fill: 'nearest', cval: 0 });
      for (const m of ref.json.models) {
        const model = tagnet.loadModel(ref.modelBytes(m.name));
        try {
          for (const part of ['head', 'last-block', 'all']) {
            assert.equal(model.trainableFrom(part), m.trainableFrom[part], `${m.name} ${part}`);
          }
          const layers = model.info().layers;
          assert.equal(model.trainableFrom('head'), layers.map((l) => l.type).lastIndexOf('Dense'));
          assert.equal(model.trainableFrom(layers[3].name), 3);
          assert.ok(model.info().layers.every((l) => l.trainable));   // asking changes nothing
          const from = model.setTrainable('last-block');
          assert.equal(from, m.trainableFrom['last-block']);
          assert.deepEqual(model.info().layers.map((l) => l.trainable), layers.map((_, i) => i >= from));
          assert.throws(() => model.trainableFrom('middle'), (e) => e.name === 'TagnetError' &&
                        /middle: expected none, head, last-block, all, as-saved or a layer index or name/.test(e.message));
          assert.throws(() => model.setTrainable(3), /must be a string/);
        } finally {
          model.delete();
        }
      }
    });

    test('fashionnet: new softmax head on a frozen base learns 3 classes', async (t) => {
      const model = tagnet.loadModel(ref.modelBytes('fashionnet'));
      const trainers = [];
      try {
        model.replaceHead(['stripes', 'bands', 'checks'], false, { seed: 5 });
        const layers = model.info().layers;
        const flatten = layers.findIndex((l) => l.type === 'Flatten');
        model.freeze(flatten);
        const info = model.info();
        assert.deepEqual(info.labels, ['stripes', 'bands', 'checks']);
        assert.equal(info.head, 'softmax');
        assert.equal(info.labelMode, 'single');
        assert.equal(info.trainableParams, layers.slice(flatten).reduce((s, l) => s + l.params, 0));

        const examples = examplesFor(12, 64, 48, (k) => [0, 1, 2].map((j) => Number(j === k)));
        const before = evalLoss(model, examples, false);
        const trainer = model.createTrainer({ lr: 3e-3, epochs: 10, batchSize: 4, seed: 1 });
        trainers.push(trainer);
        for (const ex of examples) trainer.addExample(ex.rgba, ex.width, ex.height, ex.labels);
        assert.equal(trainer.size, 12);

        const seen = [];
        const last = await trainer.fit((step, steps, loss, accuracy) => {
          seen.push({ step, steps, loss, accuracy });
        });
        assert.equal(seen.length, 30);   // 10 epochs x 3 batches
        assert.ok(seen.every((s) => s.steps === 3 && Number.isFinite(s.loss)));
        assert.equal(last.done, true);
        assert.equal(last.epoch, 10);
        const afterLoss = evalLoss(model, examples, false);
        t.diagnostic(`fashionnet: loss ${before.toFixed(4)} -> ${afterLoss.toFixed(4)}`);
        assert.ok(afterLoss < before * 0.9, `loss ${before} -> ${afterLoss}`);

        assertNativeAgrees(t, tagnet, model.save(), ref.picture('large'), `${variant}-fashionnet`);
      } finally {
        trainers.forEach((t) => t.delete());
        model.delete();
      }
    });

    test('smallervggnet: multi-label head with augmentation, step by step', (t) => {
      const model = tagnet.loadModel(ref.modelBytes('smallervggnet'));
      let trainer = null;
      try {
        model.replaceHead(['red', 'round'], true, { seed: 9 });
        // Only the new head trains: the base's BatchNorm layers stay in inference mode.
        const head = model.info().layers.findLastIndex((l) => l.type === 'Dense');
        model.freeze(head);
        assert.equal(model.info().head, 'sigmoid');
        assert.equal(model.info().labelMode, 'multi');

        const examples = examplesFor(8, 100, 90, (k) => [Number(k !== 1), Number(k === 2)]);
        const before = evalLoss(model, examples, true);
        trainer = model.createTrainer({
          lr: 1e-2, epochs: 3, batchSize: 4, seed: 2,
          augment: { rotation: 15, widthShift: 0.1, heightShift: 0.1, zoom: 0.1, hflip: true },
        });
        for (const ex of examples) trainer.addExample(ex.rgba, ex.width, ex.height, new Float32Array(ex.labels));
        let r;
        do {
          r = trainer.step();
          assert.ok(Number.isFinite(r.loss) && r.accuracy >= 0 && r.accuracy <= 1);
        } while (!r.done);
        assert.equal(r.epoch, 3);
        assert.equal(r.steps, 2);
        const afterLoss = evalLoss(model, examples, true);
        t.diagnostic(`smallervggnet: loss ${before.toFixed(4)} -> ${afterLoss.toFixed(4)}`);
        assert.ok(afterLoss < before, `loss ${before} -> ${afterLoss}`);

        assertNativeAgrees(t, tagnet, model.save(), ref.picture('mixed'), `${variant}-smallervggnet`);
      } finally {
        trainer?.delete();
        model.delete();
      }
    });

    test('a trainer stops when onStep returns false or the signal aborts', async () => {
      const model = tagnet.loadModel(ref.modelBytes('fashionnet'));
      const trainer = model.createTrainer({ batchSize: 2, epochs: 2 });
      try {
        for (const ex of examplesFor(8, 30, 30, (k) => [...Array(10)].map((_, j) => Number(j === k)))) {
          trainer.addExample(ex.rgba, ex.width, ex.height, ex.labels);
        }
        let calls = 0;
        const r = await trainer.runEpoch(() => ++calls < 2);
        assert.equal(calls, 2);
        assert.equal(r.step, 2);
        assert.equal(r.epochEnd, false);
        const controller = new AbortController();
        controller.abort();
        assert.equal(await trainer.fit(undefined, { signal: controller.signal }), null);
        // The epoch continues where it stopped.
        assert.equal(trainer.step().step, 3);
        // Deleting the model first leaves the trainer usable (it shares the weights).
        model.delete();
        assert.equal(trainer.step().epochEnd, true);
      } finally {
        trainer.delete();
        model.delete();
      }
    });
  });
}
