// Bad input raises a JS Error (TagnetError) with the core's message; the module never aborts
// and keeps working afterwards.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { TagnetError } from '../tagnet.js';
import { loadReference, openTagnet, syntheticPicture, variants } from './helpers.mjs';

function throwsTagnet(fn, pattern) {
  assert.throws(fn, (e) => {
    assert.ok(e instanceof TagnetError, `expected a TagnetError, got ${e?.constructor?.name}: ${e}`);
    assert.ok(e instanceof Error);
    assert.match(e.message, pattern);
    return true;
  });
}

for (const variant of variants) {
  describe(`errors (${variant})`, () => {
    let tagnet;
    let ref;
    let model;
    let baseline;
    const pic = { rgba: syntheticPicture(40, 30, 1), width: 40, height: 30 };

    before(async () => {
      ref = loadReference();
      tagnet = await openTagnet(variant);
      model = tagnet.loadModel(ref.modelBytes('fashionnet'));
      baseline = model.classify(pic.rgba, pic.width, pic.height);
    });
    after(() => {
      // Still working after everything below.
      assert.deepEqual(model.classify(pic.rgba, pic.width, pic.height), baseline);
      model.delete();
      tagnet.dispose();
    });

    test('bad model bytes', () => {
      const good = ref.modelBytes('fashionnet');
      throwsTagnet(() => tagnet.loadModel(new Uint8Array(0)), /model bytes/);
      throwsTagnet(() => tagnet.loadModel(new Uint8Array(1000).fill(7)), /model bytes/);
      throwsTagnet(() => tagnet.loadModel(good.subarray(0, good.length >> 1)), /model bytes/);
      const corrupt = good.slice();
      corrupt[corrupt.length - 5] ^= 0xff;   // in the weights: the data checksum fails
      throwsTagnet(() => tagnet.loadModel(corrupt), /model bytes/);
      const header = good.slice();
      header[60] ^= 0x20;                    // in the JSON header
      throwsTagnet(() => tagnet.loadModel(header), /model bytes/);
      throwsTagnet(() => tagnet.loadModel('not bytes'), /Uint8Array/);
    });

    test('random and mutated model bytes never abort the module', () => {
      const good = ref.modelBytes('fashionnet');
      let seed = 7;
      const rand = (n) => {
        seed = (seed * 1103515245 + 12345) >>> 0;
        return seed % n;
      };
      let refused = 0;
      for (let i = 0; i < 300; ++i) {
        let bytes;
        if (i % 3 === 0) {
          bytes = new Uint8Array(rand(4096));
          for (let k = 0; k < bytes.length; ++k) bytes[k] = rand(256);
        } else if (i % 3 === 1) {
          bytes = good.slice(0, rand(good.length));   // truncated
        } else {
          bytes = good.slice();                      // a few bytes overwritten anywhere
          for (let k = 0, n = 1 + rand(8); k < n; ++k) bytes[rand(bytes.length)] = rand(256);
        }
        try {
          tagnet.loadModel(bytes).delete();
        } catch (e) {
          assert.ok(e instanceof TagnetError, `${e}`);
          assert.match(e.message, /^model bytes: /);
          ++refused;
        }
      }
      assert.ok(refused >= 290, `${refused} of 300 refused`);
      throwsTagnet(() => model.classify(new Uint8Array(4), 1 << 20, 1 << 20), /out of range|bytes/);
    });

    test('wrong picture sizes', () => {
      throwsTagnet(() => model.classify(pic.rgba, 41, 30), /must be 4920 bytes, got 4800/);
      throwsTagnet(() => model.classify(pic.rgba.subarray(1), 40, 30), /bytes/);
      throwsTagnet(() => model.classify(pic.rgba, 0, 30), /size/);
      throwsTagnet(() => model.classify(pic.rgba, 40.5, 30), /size/);
      throwsTagnet(() => model.classify(pic.rgba, 40, -30), /size/);
      throwsTagnet(() => model.classify(new Uint8Array(4 * 20000), 20000, 1), /out of range/);
      throwsTagnet(() => model.classify([1, 2, 3, 4], 1, 1), /Uint8Array/);
    });

    test('empty and bad batches', () => {
      throwsTagnet(() => model.classifyBatch([]), /empty/);
      throwsTagnet(() => model.classifyBatch(undefined), /empty/);
      throwsTagnet(() => model.classifyBatch([pic, { ...pic, width: 39 }]), /bytes/);
      throwsTagnet(() => model.classifyBatch([pic, null]), /item 1/);
    });

    test('bad fine-tuning calls', () => {
      throwsTagnet(() => model.freeze(-1), /freeze/);
      throwsTagnet(() => model.freeze(1000), /freeze/);
      throwsTagnet(() => model.replaceHead(['only one'], false), /at least 2 labels/);
      throwsTagnet(() => model.createTrainer({ batchSize: 0 }), /batchSize/);
      throwsTagnet(() => model.createTrainer({ lr: -1 }), /lr/);
      throwsTagnet(() => model.createTrainer({ augment: { fill: 'mirror' } }), /fill mode/);
      const trainer = model.createTrainer({ batchSize: 2 });
      try {
        throwsTagnet(() => trainer.step(), /no examples/);
        throwsTagnet(() => trainer.addExample(pic.rgba, 40, 30, [1, 0]), /10 outputs/);
        throwsTagnet(() => trainer.addExample(pic.rgba, 40, 31, new Float32Array(10)), /bytes/);
        assert.equal(trainer.size, 0);
      } finally {
        trainer.delete();
      }
      throwsTagnet(() => tagnet.createModel('resnet', { labels: ['a', 'b'] }), /unknown architecture/);
      throwsTagnet(() => tagnet.createModel('fashionnet', { labels: ['a'], head: 'logit' }), /2 labels/);
    });

    test('deleted objects', () => {
      const m = tagnet.loadModel(ref.modelBytes('fashionnet'));
      const t = m.createTrainer();
      t.delete();
      m.delete();
      m.delete();   // twice is harmless
      throwsTagnet(() => m.classify(pic.rgba, pic.width, pic.height), /deleted/);
      throwsTagnet(() => t.step(), /deleted/);
    });
  });
}
