"""PyTorch as the outside oracle of `tagnet import` (tests/test_onnx_cli.cpp).

Builds tagnet's tutorial networks in PyTorch with random weights (BatchNorm statistics drawn too,
so folding and ordering mistakes show), exports each with torch.onnx.export, draws pictures at
the input size as PNG and writes PyTorch's outputs for them:

    python3 tests/onnx/torch_oracle.py OUT_DIR

OUT_DIR/<net>.onnx, OUT_DIR/<net>/<i>.png, OUT_DIR/<net>.json ({"labels", "outputs": [[...]]}),
and OUT_DIR/unsupported.onnx (a LeakyRelu, which tagnet does not map).
"""
import json
import os
import sys

import numpy as np
import torch
from PIL import Image
from torch import nn


def vgg_features():
    def block(cin, cout):
        return [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(), nn.BatchNorm2d(cout)]
    return [*block(3, 32), nn.MaxPool2d(3), nn.Dropout(0.25),
            *block(32, 64), *block(64, 64), nn.MaxPool2d(2), nn.Dropout(0.25),
            *block(64, 128), *block(128, 128), nn.MaxPool2d(2), nn.Dropout(0.25)]


def smallervggnet(n):   # 96x96x3, tagnet's "smallervggnet" with a sigmoid (multi-label) head
    return nn.Sequential(*vgg_features(), nn.Flatten(), nn.Linear(128 * 8 * 8, 1024), nn.ReLU(),
                         nn.BatchNorm1d(1024), nn.Dropout(0.5), nn.Linear(1024, n), nn.Sigmoid())


def fashionnet(n):   # 56x56x1, tagnet's "fashionnet": Keras 'same' 2x2 convolutions pad bottom/right
    layers = []
    for cin, cout in [(1, 16), (16, 32), (32, 64)]:
        layers += [nn.ZeroPad2d((0, 1, 0, 1)), nn.Conv2d(cin, cout, 2), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(0.3)]
    return nn.Sequential(*layers[:-1], nn.Flatten(), nn.Linear(64 * 7 * 7, n), nn.Softmax(dim=1))


def gapnet(n):   # 96x96x3, tagnet's "smallervggnet-gap"
    return nn.Sequential(*vgg_features(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, 256), nn.ReLU(),
                         nn.BatchNorm1d(256), nn.Dropout(0.5), nn.Linear(256, n), nn.Softmax(dim=1))


def randomise(model, gen, spread):
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                c = m.num_features
                m.weight.copy_(torch.rand(c, generator=gen) + 0.5)
                m.bias.copy_(torch.rand(c, generator=gen) * 0.4 - 0.2)
                m.running_mean.copy_(torch.rand(c, generator=gen) * 0.2 - 0.1)
                m.running_var.copy_(torch.rand(c, generator=gen) * 0.5 + 0.5)
            elif isinstance(m, (nn.Conv2d, nn.Linear)):
                m.bias.copy_(torch.rand(m.bias.shape, generator=gen) * 0.2 - 0.1)
        # PyTorch's initialisation leaves the outputs near 1/n for every picture: widen the
        # last layer so that they spread and a misplaced weight shows.
        last = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
        last.weight.mul_(spread)


def pictures(size, channels, count, rng):
    """Smooth pictures with a bright rectangle: not noise, so the outputs spread."""
    out = []
    for _ in range(count):
        yy, xx = np.mgrid[0:size, 0:size] / size
        base = np.stack([np.sin(rng.uniform(2, 8) * xx + rng.uniform(0, 6)) * np.cos(rng.uniform(2, 8) * yy)
                         for _ in range(channels)], -1)
        img = (base * 0.5 + 0.5) * 200
        y0, x0 = rng.integers(0, size // 2, 2)
        img[y0:y0 + size // 3, x0:x0 + size // 4] = rng.uniform(150, 255, channels)
        out.append(np.clip(img, 0, 255).astype(np.uint8))
    return out


def export(model, size, channels, path):
    x = torch.zeros(1, channels, size, size)
    torch.onnx.export(model, x, path, opset_version=13, input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": {0: "N"}, "output": {0: "N"}})


def main(out):
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(1)
    gen = torch.Generator().manual_seed(2)
    rng = np.random.default_rng(3)
    nets = {"smallervggnet": (smallervggnet, 96, 3, ["red", "blue", "black", "dress", "jeans", "shirt"], 30),
            "fashionnet": (fashionnet, 56, 1, ["tshirt", "trouser", "pullover", "dress", "coat",
                                               "sandal", "shirt", "sneaker", "bag", "boot"], 60),
            "gapnet": (gapnet, 96, 3, ["cat", "dog", "bird", "fish"], 20)}
    for name, (make, size, channels, labels, spread) in nets.items():
        model = make(len(labels))
        randomise(model, gen, spread)
        model.eval()
        export(model, size, channels, os.path.join(out, name + ".onnx"))
        os.makedirs(os.path.join(out, name), exist_ok=True)
        pics = pictures(size, channels, 4, rng)
        files = []
        for i, p in enumerate(pics):
            f = os.path.join(out, name, f"{i}.png")
            Image.fromarray(p[:, :, 0] if channels == 1 else p, "L" if channels == 1 else "RGB").save(f)
            files.append(f)
        # What tagnet does with a PNG at the input size: pixels / 255, NCHW for PyTorch.
        x = torch.from_numpy(np.stack(pics).astype(np.float32) / 255).permute(0, 3, 1, 2)
        with torch.no_grad():
            y = model(x).numpy().astype(float)
        with open(os.path.join(out, name + ".json"), "w") as fh:
            json.dump({"labels": labels, "pictures": files, "outputs": y.tolist()}, fh)

    leaky = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.LeakyReLU(0.1), nn.Flatten(), nn.Linear(4 * 8 * 8, 2),
                          nn.Softmax(dim=1)).eval()
    export(leaky, 8, 3, os.path.join(out, "unsupported.onnx"))


if __name__ == "__main__":
    main(sys.argv[1])
