"""PyTorch as the outside oracle of tagnet's training (tests/test_onnx_cli.cpp): the same network
from the same weights, trained the same steps on the same pictures, must give the same inference
outputs with BatchNorm's moving averages and with population statistics.

    python3 tests/onnx/torch_training_oracle.py OUT_DIR STEPS

Writes OUT_DIR/start.onnx (the untrained network, for `tagnet import`), OUT_DIR/pictures/<labels>/
(PNG pictures; each folder names its labels as `tagnet train --labels multi` reads them) and
OUT_DIR/trained.json: {"labels", "pictures", "moving", "population"}, the outputs of every picture
after STEPS steps on one batch of all of them, as `tagnet train --no-augment --batch-size ALL
--decay 0` takes them:
- the steps: Keras' Adam (lr 1e-3, epsilon 1e-7 beside sqrt(v), bias correction in the rate),
  binary cross-entropy averaged over pictures and labels, BatchNorm on the batch's statistics;
- "moving": BatchNorm's moving averages (Keras' momentum 0.99 = PyTorch's 0.01, unbiased variance);
- "population": the moving statistics replaced by the mean and unbiased variance of each
  BatchNorm's inputs over the batch, under the final weights (tagnet's --bn-statistics population).
"""
import json
import os
import sys

import numpy as np
import torch
from PIL import Image
from torch import nn

FOLDERS = ["cat", "dog", "cat_dog", "fish"]   # labels cat, dog, fish
SIZE, PER_FOLDER = 16, 6


def network():
    def block(cin, cout):
        return [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(), nn.BatchNorm2d(cout, eps=1e-3, momentum=0.01),
                nn.MaxPool2d(2)]
    return nn.Sequential(*block(3, 8), *block(8, 8), nn.Flatten(), nn.Linear(8 * 4 * 4, 16), nn.ReLU(),
                         nn.BatchNorm1d(16, eps=1e-3, momentum=0.01), nn.Linear(16, 3), nn.Sigmoid())


def picture(folder, rng):
    """A coloured square on a noisy background; its colour and place depend on the labels."""
    img = rng.uniform(20, 90, (SIZE, SIZE, 3))
    for label, colour in (("cat", (230, 60, 40)), ("dog", (40, 200, 60)), ("fish", (50, 80, 230))):
        if label in folder.split("_"):
            y, x = rng.integers(0, SIZE - 6, 2)
            img[y:y + 6, x:x + 6] = colour
    return img.astype(np.uint8)


def main(out, steps):
    torch.manual_seed(5)
    rng = np.random.default_rng(6)
    labels = sorted({p for f in FOLDERS for p in f.split("_")})
    net = network()
    net.eval()
    torch.onnx.export(net, torch.zeros(1, 3, SIZE, SIZE), os.path.join(out, "start.onnx"), opset_version=13,
                      input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": {0: "N"}, "output": {0: "N"}})
    files, pics, targets = [], [], []
    for folder in FOLDERS:
        os.makedirs(os.path.join(out, "pictures", folder), exist_ok=True)
        for i in range(PER_FOLDER):
            p = picture(folder, rng)
            f = os.path.join(out, "pictures", folder, f"{i}.png")
            Image.fromarray(p, "RGB").save(f)
            files.append(f)
            pics.append(p)
            targets.append([1.0 if l in folder.split("_") else 0.0 for l in labels])
    x = torch.from_numpy(np.stack(pics).astype(np.float32) / 255).permute(0, 3, 1, 2)
    y = torch.tensor(targets)

    params = [p for p in net.parameters()]
    m = [torch.zeros_like(p) for p in params]
    v = [torch.zeros_like(p) for p in params]
    lr, b1, b2, eps = 1e-3, 0.9, 0.999, 1e-7
    net.train()
    for t in range(1, steps + 1):
        net.zero_grad()
        loss = nn.functional.binary_cross_entropy(net(x), y)
        loss.backward()
        lr_t = lr * (1 - b2 ** t) ** 0.5 / (1 - b1 ** t)
        with torch.no_grad():
            for p, mp, vp in zip(params, m, v):
                mp.mul_(b1).add_(p.grad, alpha=1 - b1)
                vp.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                p.sub_(lr_t * mp / (vp.sqrt() + eps))

    net.eval()
    with torch.no_grad():
        moving = net(x).numpy().astype(float).tolist()
    norms = [mod for mod in net.modules() if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d))]
    for mod in norms:
        mod.reset_running_stats()
        mod.momentum = None   # a cumulative average: after one batch, that batch's statistics
    net.train()
    with torch.no_grad():
        net(x)
    net.eval()
    with torch.no_grad():
        population = net(x).numpy().astype(float).tolist()
    with open(os.path.join(out, "trained.json"), "w") as fh:
        json.dump({"labels": labels, "pictures": files, "moving": moving, "population": population}, fh)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
