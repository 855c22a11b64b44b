// tagnet.d.ts, tagnet.js and the bindings cannot drift apart: the declared members of each class
// are exactly the public members of tagnet.js's objects, and a run through the whole JS API
// calls every function the bindings export.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import { describeVariants, repoRoot, syntheticPicture } from './helpers.mjs';

// Member names of a declared class or interface of tagnet.d.ts.
function declared(name) {
  const source = fs.readFileSync(path.join(repoRoot, 'wasm/tagnet.d.ts'), 'utf8')
    .replace(/\/\*\*[\s\S]*?\*\//g, '');
  const m = source.match(new RegExp(`export (?:declare class|interface) ${name} (?:extends \\w+ )?\\{([\\s\\S]*?)\\n\\}`));
  assert.ok(m, `tagnet.d.ts declares ${name}`);
  const members = new Set();
  for (const line of m[1].split('\n')) {
    const d = line.match(/^ {2}(?:readonly )?(\w+)[(?:<]/);
    if (d && d[1] !== 'constructor' && !/^ {2}private /.test(line)) members.add(d[1]);
  }
  return members;
}

// Public members of a tagnet.js object: its own fields and its class's methods and getters.
function publicMembers(object) {
  const names = new Set(Object.keys(object));
  for (const n of Object.getOwnPropertyNames(Object.getPrototypeOf(object))) names.add(n);
  return new Set([...names].filter((n) => n !== 'constructor' && !n.startsWith('_')));
}

// Counts the calls of every function the module's bindings export.
function countBindings(mod) {
  const calls = new Map();
  const wrap = (owner, name, key) => {
    const f = owner[name];
    calls.set(key, 0);
    owner[name] = function (...args) {
      calls.set(key, calls.get(key) + 1);
      return f.apply(this, args);
    };
  };
  for (const name of ['init', 'engineDescription', 'heapBytes', 'heapInUse', 'tutorialAugment']) wrap(mod, name, name);
  for (const cls of ['Model', 'Trainer', 'Teacher']) {
    const proto = mod[cls].prototype;
    for (const name of Object.getOwnPropertyNames(proto)) {
      if (typeof proto[name] !== 'function' || name === 'constructor' || /^(delete|clone|isAliasOf|isDeleted|deleteLater)$/.test(name)) continue;
      wrap(proto, name, `${cls}.${name}`);
    }
  }
  return calls;
}

describeVariants('the JS API', (env) => {
  test('tagnet.d.ts declares what tagnet.js offers, and tagnet.js uses every binding', async () => {
    const { tagnet } = env;
    const calls = countBindings(tagnet._mod);
    const labels = ['tshirt', 'trouser', 'pullover', 'dress', 'coat', 'sandal', 'shirt', 'sneaker', 'bag', 'boot'];
    const model = tagnet.createModel('fashionnet', { labels, seed: 1 });
    const pictures = Array.from({ length: 4 }, (_, i) => ({ rgba: syntheticPicture(56, 56, i + 1, i % 3), width: 56, height: 56 }));
    const [one] = pictures;
    model.info();
    model.classify(one.rgba, one.width, one.height);
    model.classifyBatch(pictures);
    const answers = model.answers(pictures);
    assert.equal(answers.answers.length, 4);
    assert.equal(answers.probabilities.length, 40);
    model.lastNovelty();
    const again = tagnet.loadModel(model.save());
    const imported = tagnet.importOnnx(model.exportOnnx(), { name: 'fashionnet.onnx' });
    model.trainableFrom('head');
    model.setTrainable('all');
    model.freeze(0);

    const trainer = model.createTrainer({ batchSize: 2, seed: 1 });
    for (const [i, p] of pictures.entries()) trainer.addExample(p.rgba, p.width, p.height, labels.map((_, k) => +(k === i)));
    assert.equal(trainer.size, 4);
    trainer.step();
    await trainer.runEpoch();
    await trainer.fit();
    model.recordFineTuning({ examples: 4 }, [['shirt', 'dress'], ['bag']]);
    const card = model.info().metadata;
    assert.equal(card.fine_tuned.examples, 4);
    assert.match(card.fine_tuned.date, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.deepEqual(card.combinations, [['bag'], ['dress', 'shirt']]);
    model.setDescription('clothes');
    assert.equal(model.info().metadata.description, 'clothes');

    const teacher = again.createTeacher(['stripes', 'plain'], { onePerPicture: true, copies: 1, steps: 5 });
    for (let i = 0; i < 4; ++i) {
      teacher.addPicture(syntheticPicture(56, 56, 50 + i, 0), 56, 56, ['stripes']);
      teacher.addPicture(syntheticPicture(56, 56, 60 + i, 2), 56, 56, ['plain']);
    }
    assert.equal(teacher.size, 8);
    teacher.step();
    await teacher.run();
    teacher.report();
    const taught = teacher.result();
    again.replaceHead(['left', 'right'], false, { seed: 2 });
    tagnet.heapBytes();
    tagnet.heapInUse();
    tagnet.tutorialAugment();
    void tagnet.engine;

    assert.deepEqual(publicMembers(tagnet), declared('Tagnet'));
    assert.deepEqual(publicMembers(model), declared('Model'));
    assert.deepEqual(publicMembers(trainer), declared('Trainer'));
    assert.deepEqual(publicMembers(teacher), declared('Teacher'));
    for (const o of [teacher, trainer, taught, imported, again, model]) o.delete();
    const unused = [...calls].filter(([, n]) => n === 0).map(([k]) => k);
    // init runs when the module starts, before the count.
    assert.deepEqual(unused, ['init'], 'bindings no JS calls');
  });
});
