// After a warm-up, 1,000 classify calls and 100 training steps neither grow the wasm memory
// nor leave allocations behind: every buffer is either reused or freed, errors included.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { loadReference, openTagnet, syntheticPicture, variants } from './helpers.mjs';

for (const variant of variants) {
  describe(`memory (${variant})`, () => {
    let tagnet;
    let ref;
    before(async () => {
      ref = loadReference();
      tagnet = await openTagnet(variant);
    });
    after(() => tagnet?.dispose());

    test('the heap does not grow over 1,000 classify calls and 100 training steps', (t) => {
      const model = tagnet.loadModel(ref.modelBytes('fashionnet'));
      const pictures = [
        { rgba: syntheticPicture(80, 60, 1), width: 80, height: 60 },
        { rgba: syntheticPicture(30, 20, 2), width: 30, height: 20 },
        { rgba: syntheticPicture(56, 56, 3), width: 56, height: 56 },
      ];
      const trainer = model.createTrainer({ batchSize: 4, seed: 3, augment: { rotation: 10, zoom: 0.1, hflip: true } });
      try {
        for (let i = 0; i < 10; ++i) {
          const p = pictures[i % 3];
          trainer.addExample(p.rgba, p.width, p.height, [...Array(10)].map((_, k) => Number(k === i % 10)));
        }
        const work = (classifyCalls, trainSteps) => {
          for (let i = 0; i < classifyCalls; ++i) {
            const p = pictures[i % pictures.length];
            const probs = model.classify(p.rgba, p.width, p.height);
            assert.equal(probs.length, 10);
            if (i % 100 === 0) {
              model.classifyBatch(pictures);
              model.save();
              model.info();
              assert.throws(() => model.classify(p.rgba, p.width + 1, p.height));
              assert.throws(() => tagnet.loadModel(new Uint8Array(64)));
            }
          }
          for (let s = 0; s < trainSteps; ++s) trainer.step();
        };
        // Warm-up: two epochs of 3 batches (the last one smaller), repeated until the heap in use
        // stops changing. Each pool thread sizes its scratch the first time it draws a given
        // task, which depends on how tasks happen to be shared out; a leak keeps growing.
        let settled = tagnet.heapInUse();
        for (let round = 0; round < 8; ++round) {
          work(20, 6);
          const now = tagnet.heapInUse();
          if (now === settled && round > 0) break;
          settled = now;
        }
        const grownBefore = tagnet.heapBytes();
        const usedBefore = tagnet.heapInUse();
        work(1000, 100);
        const grownAfter = tagnet.heapBytes();
        const usedAfter = tagnet.heapInUse();
        t.diagnostic(`heap ${grownBefore} -> ${grownAfter} bytes, in use ${usedBefore} -> ${usedAfter}`);
        assert.equal(grownAfter, grownBefore, 'wasm memory grew');
        // The allocator may round a block up by a few bytes depending on what is free, so
        // allow less than the smallest leak per call (16 bytes x 100 steps) could add up to.
        assert.ok(Math.abs(usedAfter - usedBefore) < 1024, `allocations left behind: ${usedAfter - usedBefore} bytes`);
      } finally {
        trainer.delete();
        model.delete();
      }
    });

    test('deleting models and trainers frees their memory', () => {
      const before = tagnet.heapInUse();
      for (let i = 0; i < 3; ++i) {
        const model = tagnet.loadModel(ref.modelBytes('fashionnet'));
        const trainer = model.createTrainer({ batchSize: 2 });
        const p = { rgba: syntheticPicture(56, 56, i), width: 56, height: 56 };
        trainer.addExample(p.rgba, p.width, p.height, new Float32Array(10).fill(0.1));
        trainer.step();
        model.classify(p.rgba, p.width, p.height);
        trainer.delete();
        model.delete();
      }
      assert.ok(Math.abs(tagnet.heapInUse() - before) < 1024, `${tagnet.heapInUse() - before} bytes left behind`);
    });
  });
}
