#!/usr/bin/python3
"""Medians and per-pair ratios of scripts/bench-vs-peers.sh's runs (one JSON object per line)."""
import collections
import datetime
import json
import statistics
import sys

runs = collections.defaultdict(dict)  # pair -> what -> result
for line in open(sys.argv[1]):
    r = json.loads(line)
    runs[r["pair"]][r["what"]] = r["result"]

# (title, ours, peer, figure getter, higher is better, goal on the speed ratio)
ROWS = [
    ("SmallerVGGNet training, batch 32 (images/s)", "tagnet", "pytorch",
     lambda r: r["smallervggnet"]["train_images_per_s"], True, 1.5),
    ("SmallerVGGNet inference, batch 1 (ms)", "tagnet", "pytorch",
     lambda r: r["smallervggnet"]["infer_b1_ms"], False, 2.0),
    ("SmallerVGGNet inference, batch 32 (images/s)", "tagnet", "pytorch",
     lambda r: r["smallervggnet"]["infer_b32_images_per_s"], True, 1.5),
    ("FashionNet training, batch 32 (images/s)", "tagnet", "pytorch",
     lambda r: r["fashionnet"]["train_images_per_s"], True, 2.0),
    ("Browser: SmallerVGGNet classify, batch 1 (ms)", "tagnet-web", "ort-web",
     lambda r: r["classify_b1_ms"], False, 2.0),
    ("Browser: SmallerVGGNet classify, batch 32 (images/s)", "tagnet-web", "ort-web",
     lambda r: r["classify_b32_images_per_s"], True, 2.0),
    ("Browser training against native hwy training (images/s)", "tagnet-web", "tagnet-hwy",
     lambda r: r.get("train_b32_images_per_s") or r["smallervggnet"]["train_images_per_s"], True, 0.75),
    ("Browser training against native hwy SSE4 training (images/s)", "tagnet-web", "tagnet-sse4",
     lambda r: r.get("train_b32_images_per_s") or r["smallervggnet"]["train_images_per_s"], True, 0.75),
]


def fmt(v):
    return f"{v:.1f}" if v >= 10 else f"{v:.2f}"


def spread(values):
    return f"{fmt(statistics.median(values))} ({fmt(min(values))}-{fmt(max(values))})"


engines, cpu = {}, None
print(f"{datetime.date.today()}, {len(runs)} interleaved pairs; speed ratio = how many times faster tagnet is")
print(f"{'':58} {'tagnet':>22} {'peer':>22} {'speed ratio':>20}  goal")
for title, ours, peer, get, higher, goal in ROWS:
    pairs = [p for p in runs.values() if ours in p and peer in p]
    if not pairs:
        continue
    a = [get(p[ours]) for p in pairs]
    b = [get(p[peer]) for p in pairs]
    ratios = [x / y if higher else y / x for x, y in zip(a, b)]
    med = statistics.median(ratios)
    print(f"{title:58} {spread(a):>22} {spread(b):>22} {spread(ratios):>20}  >= {goal} "
          f"{'met' if med >= goal else 'NOT met'}")
    for w in (ours, peer):
        engines[w] = pairs[0][w].get("engine", w)
    cpu = cpu or pairs[0][ours].get("cpu")
print("engines: " + "; ".join(f"{k}: {v}" for k, v in engines.items()))
if cpu:
    print(f"cpu: {cpu}")
