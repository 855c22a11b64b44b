// Teaching new labels in WASM: the model's own outputs stay exactly as they were, the new
// labels learn, the report says how well, and the taught model runs natively the same.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import { describeVariants, maxAbsDiff, nativeClassify, syntheticPicture } from './helpers.mjs';

describeVariants('teaching', (env) => {
  test('two new labels next to six old ones', async (t) => {
    const { tagnet, ref } = env;
    const model = tagnet.loadModel(ref.modelBytes('smallervggnet'));
    const teacher = model.createTeacher(['stripes', 'checks'], { onePerPicture: true, copies: 2, seed: 3 });
    let taught = null;
    try {
      const oldLabels = model.info().labels;
      for (let i = 0; i < 10; ++i) {
        teacher.addPicture(syntheticPicture(64, 64, 100 + i, 0), 64, 64, ['stripes']);
        teacher.addPicture(syntheticPicture(64, 64, 200 + i, 2), 64, 64, ['checks']);
      }
      assert.equal(teacher.size, 20);
      assert.throws(() => teacher.addPicture(syntheticPicture(8, 8, 1), 8, 8, ['dots']),
                    (e) => e.name === 'TagnetError' && /"dots" is not one of the labels taught/.test(e.message));
      const phases = [];
      assert.equal(await teacher.run((p) => phases.push(p.phase)), true);
      assert.equal(phases[0], 'features');
      assert.equal(phases.at(-1), 'done');
      assert.ok(phases.includes('training'));

      const r = teacher.report();
      t.diagnostic(`held out ${r.right}/${r.heldOut}, features ${r.featureSeconds.toFixed(2)} s, training ${r.trainSeconds.toFixed(3)} s`);
      assert.deepEqual(r.labels.map((l) => [l.name, l.pictures, l.heldOut]), [['stripes', 10, 2], ['checks', 10, 2]]);
      assert.equal(r.chance, 0.5);
      assert.ok(r.right >= 3, `held-out ${r.right}/${r.heldOut}`);
      assert.ok(Array.isArray(r.warnings));

      taught = teacher.result();
      assert.deepEqual(taught.info().labels, [...oldLabels, 'stripes', 'checks']);
      let right = 0;
      for (let i = 0; i < 10; ++i) {
        const klass = i % 2 ? 2 : 0;
        const picture = syntheticPicture(64, 64, 900 + i, klass);
        const before = model.classify(picture, 64, 64);
        const afterOut = taught.classify(picture, 64, 64);
        assert.deepEqual(Array.from(afterOut.slice(0, 6)), Array.from(before), 'old outputs unchanged');
        right += (afterOut[6] > afterOut[7]) === (klass === 0);
      }
      assert.ok(right >= 8, `${right}/10 unseen pictures`);
      assert.deepEqual(Array.from(model.lastNovelty()), [-1]);   // no statistics in this model

      const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tagnet-teach-')), 'taught.tagnet');
      fs.writeFileSync(file, taught.save());
      const picture = ref.picture('large');
      const d = maxAbsDiff(taught.classify(picture.rgba, picture.width, picture.height), nativeClassify(file, picture));
      t.diagnostic(`taught model: max |wasm - native| = ${d.toExponential(2)}`);
      assert.ok(d <= 1e-4);
      fs.rmSync(path.dirname(file), { recursive: true, force: true });
    } finally {
      taught?.delete();
      teacher.delete();
      model.delete();
    }
  });

  test('bad requests give errors, not crashes', () => {
    const model = env.tagnet.loadModel(env.ref.modelBytes('smallervggnet'));
    try {
      assert.throws(() => model.createTeacher([]), /no labels to teach/);
      assert.throws(() => model.createTeacher(['a', 'a']), /named twice/);
      assert.throws(() => model.createTeacher(['a'], { onePerPicture: true }), /needs two labels/);
      assert.throws(() => model.createTeacher(['a'], { steps: 1.5 }), /steps must be an integer/);
      const teacher = model.createTeacher(['a', 'b'], { onePerPicture: true });
      try {
        assert.throws(() => teacher.step(), /no pictures/);
        teacher.addPicture(syntheticPicture(8, 8, 1), 8, 8, ['a']);
        assert.throws(() => teacher.step(), /"b" has no pictures/);
        assert.throws(() => teacher.result(), /not finished/);
      } finally {
        teacher.delete();
      }
    } finally {
      model.delete();
    }
  });
});
