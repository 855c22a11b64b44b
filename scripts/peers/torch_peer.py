#!/usr/bin/python3
"""PyTorch as a benchmark peer of `tagnet bench`: the same two networks, timed the same way.

SmallerVGGNet (96x96x3 -> 6 sigmoid outputs, binary cross-entropy) and FashionNet (56x56x1 -> 10
softmax outputs, cross-entropy), random weights and inputs; a training step is zero_grad, forward,
loss, backward and an Adam step at batch 32; inference runs in eval mode under no_grad at batch 1
and 32. Prints one JSON object shaped like `tagnet bench --json --no-layers`.

  /usr/bin/python3 scripts/peers/torch_peer.py --threads 2 --seconds 3 [--channels-last]
  /usr/bin/python3 scripts/peers/torch_peer.py --export-onnx smallervggnet-nhwc.onnx

A benchmark peer only: tagnet never loads PyTorch.
"""
import argparse
import json
import time

import torch
import torch.nn as nn


def smallervggnet(outputs=6):
    def block(cin, cout):
        return [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(), nn.BatchNorm2d(cout)]

    return nn.Sequential(
        *block(3, 32), nn.MaxPool2d(3), nn.Dropout(0.25),
        *block(32, 64), *block(64, 64), nn.MaxPool2d(2), nn.Dropout(0.25),
        *block(64, 128), *block(128, 128), nn.MaxPool2d(2), nn.Dropout(0.25),
        nn.Flatten(), nn.Linear(128 * 8 * 8, 1024), nn.ReLU(), nn.BatchNorm1d(1024), nn.Dropout(0.5),
        nn.Linear(1024, outputs))


def fashionnet(outputs=10):
    return nn.Sequential(
        nn.Conv2d(1, 16, 2, padding="same"), nn.MaxPool2d(2), nn.Dropout(0.3),
        nn.Conv2d(16, 32, 2, padding="same"), nn.MaxPool2d(2), nn.Dropout(0.3),
        nn.Conv2d(32, 64, 2, padding="same"), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 7 * 7, outputs))


NETWORKS = {
    "smallervggnet": (smallervggnet, (3, 96, 96), lambda b: torch.randint(0, 2, (b, 6)).float(),
                      nn.BCEWithLogitsLoss()),
    "fashionnet": (fashionnet, (1, 56, 56), lambda b: torch.randint(0, 10, (b,)), nn.CrossEntropyLoss()),
}


def seconds_per_call(fn, seconds):
    """The median of calls made for about `seconds` after a warm-up."""
    for _ in range(3):
        fn()
    times = []
    start = time.perf_counter()
    while len(times) < 5 or time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2]


def bench(name, seconds, channels_last):
    make, shape, target, loss_fn = NETWORKS[name]
    torch.manual_seed(0)
    fmt = torch.channels_last if channels_last else torch.contiguous_format

    def prepare(model, x):
        return model.to(memory_format=fmt), x.contiguous(memory_format=fmt)

    r = {"params": sum(p.numel() for p in make().parameters())}
    model = make().eval()
    for batch in (1, 32):
        model, x = prepare(model, torch.randn(batch, *shape))

        def infer():
            with torch.no_grad():
                model(x)

        s = seconds_per_call(infer, seconds)
        if batch == 1:
            r["infer_b1_ms"] = s * 1e3
        else:
            r["infer_b32_images_per_s"] = batch / s
    model, x = prepare(make().train(), torch.randn(32, *shape))
    y = target(32)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step():
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()

    s = seconds_per_call(step, seconds)
    r["train_images_per_s"] = 32 / s
    r["train_batch_ms"] = s * 1e3
    return r


def export_onnx(path):
    """SmallerVGGNet taking NHWC input (as tagnet does), for ONNX Runtime Web."""

    class Nhwc(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(*smallervggnet(), nn.Sigmoid())

        def forward(self, x):
            return self.net(x.permute(0, 3, 1, 2))

    torch.manual_seed(0)
    model = Nhwc().eval()
    torch.onnx.export(model, torch.randn(1, 96, 96, 3), path, input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}}, opset_version=13)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--export-onnx")
    args = ap.parse_args()
    if args.export_onnx:
        export_onnx(args.export_onnx)
        return
    torch.set_num_threads(args.threads)
    out = {"engine": f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads"
                     + (", channels_last" if args.channels_last else "")}
    for name in NETWORKS:
        out[name] = bench(name, args.seconds, args.channels_last)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
