#!/usr/bin/python3
"""PyTorch CPU training-throughput baseline for sparsetrain benchmarks.

Measures samples/s of plain dense SGD training (lr 0.01, momentum 0.9,
cross-entropy, model.train()) for the three reference models, with data
preloaded in memory as tensors.

Timing protocol per model: 50 warm-up steps, then --steps timed steps,
repeated --repeats times; the median samples/s over repeats is reported
together with min and max.

Run with the system interpreter (Debian python3-torch 1.13):
    /usr/bin/python3 bench/pytorch_train.py --model all --threads 2 --batch 64
"""

import argparse
import json
import os
import platform
import statistics
import struct
import sys
import time

import torch
import torch.nn as nn

WARMUP_STEPS = 50
MODELS = ("lenet300", "lenet5", "simplecnn")


def build_model(name):
    if name == "lenet300":
        return nn.Sequential(
            nn.Flatten(),
            nn.Linear(784, 300), nn.ReLU(),
            nn.Linear(300, 100), nn.ReLU(),
            nn.Linear(100, 10),
        )
    if name == "lenet5":
        # Caffe LeNet-5 variant: no nonlinearity after the convolutions.
        return nn.Sequential(
            nn.Conv2d(1, 20, 5), nn.MaxPool2d(2),
            nn.Conv2d(20, 50, 5), nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(800, 500), nn.ReLU(),
            nn.Linear(500, 10),
        )
    if name == "simplecnn":
        return nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(3136, 128), nn.ReLU(),
            nn.Linear(128, 10),
        )
    raise ValueError("unknown model: %s" % name)


def read_idx(path):
    with open(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    if (magic >> 8) != 0x08:  # 0x08 = unsigned byte
        raise ValueError("%s: unsupported IDX type (magic 0x%08x)" % (path, magic))
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    off = 4 + 4 * ndim
    count = 1
    for d in dims:
        count *= d
    if len(data) - off < count:
        raise ValueError("%s: truncated file" % path)
    t = torch.frombuffer(bytearray(data[off:off + count]), dtype=torch.uint8)
    return t.reshape(dims)


def load_data(args):
    if args.mnist_dir:
        imgs = read_idx(os.path.join(args.mnist_dir, "train-images-idx3-ubyte"))
        labels = read_idx(os.path.join(args.mnist_dir, "train-labels-idx1-ubyte"))
        n = min(args.n, imgs.shape[0]) if args.n else imgs.shape[0]
        # Same normalisation as the usual MNIST pipelines (mean 0.1307, std 0.3081).
        x = (imgs[:n].float().div_(255.0).sub_(0.1307).div_(0.3081)).reshape(n, 1, 28, 28)
        y = labels[:n].long()
        source = "mnist:" + args.mnist_dir
    else:
        g = torch.Generator().manual_seed(args.seed)
        n = args.n
        x = torch.randn(n, 1, 28, 28, generator=g)
        y = torch.randint(0, 10, (n,), generator=g, dtype=torch.long)
        source = "random"
    return x.contiguous(), y.contiguous(), source


def bench_model(name, x, y, args):
    torch.manual_seed(args.seed)
    model = build_model(name)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    n = x.shape[0]
    b = args.batch
    nbatches = n // b
    if nbatches < 1:
        raise ValueError("dataset (n=%d) smaller than one batch (%d)" % (n, b))
    # Pre-slice the batches (contiguous views; no copy, no shuffling cost timed).
    batches = [(x[i * b:(i + 1) * b], y[i * b:(i + 1) * b]) for i in range(nbatches)]
    pos = [0]

    def run(steps):
        loss = None
        for _ in range(steps):
            xb, yb = batches[pos[0]]
            pos[0] = (pos[0] + 1) % nbatches
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
        return loss

    run(WARMUP_STEPS)
    rates = []
    last_loss = float("nan")
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        loss = run(args.steps)
        last_loss = loss.item()  # sync point (CPU eager is synchronous anyway)
        dt = time.perf_counter() - t0
        rates.append(args.steps * b / dt)
    return {
        "model": name,
        "batch": b,
        "threads": torch.get_num_threads(),
        "steps": args.steps,
        "repeats": args.repeats,
        "warmup_steps": WARMUP_STEPS,
        "samples_per_s_median": statistics.median(rates),
        "samples_per_s_min": min(rates),
        "samples_per_s_max": max(rates),
        "samples_per_s_all": rates,
        "final_loss": last_loss,
        "params": sum(p.numel() for p in model.parameters()),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="all", choices=MODELS + ("all",))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=300, help="timed steps per repeat")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--n", type=int, default=60000,
                    help="number of samples (random data; caps MNIST if set lower)")
    ap.add_argument("--mnist-dir", default=None,
                    help="directory with raw train-images-idx3-ubyte / train-labels-idx1-ubyte")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None, help="write results to this JSON file")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.set_grad_enabled(True)

    if args.verbose:
        cfg = torch.__config__.show()
        # Header: everything before the long "Build settings" line, plus the
        # interesting flags from it.
        for line in cfg.splitlines():
            if "Build settings" in line:
                keys = ("BLAS_INFO", "LAPACK_INFO", "USE_MKLDNN", "USE_OPENMP",
                        "USE_NNPACK", "TORCH_VERSION", "BUILD_TYPE")
                kept = [kv.strip() for kv in line.split(",")
                        if kv.strip().split("=")[0].split(":")[-1].strip() in keys]
                print("  - Build settings (selected): " + ", ".join(k.replace("- Build settings: ", "") for k in kept))
            elif line.strip():
                print(line)
        print("torch %s  python %s  mkldnn=%s  threads=%d  interop_threads=%d"
              % (torch.__version__, platform.python_version(),
                 torch.backends.mkldnn.is_available(), torch.get_num_threads(),
                 torch.get_num_interop_threads()))
        sys.stdout.flush()

    x, y, source = load_data(args)
    if args.verbose:
        print("data: %s n=%d x=%s y=%s" % (source, x.shape[0], tuple(x.shape), tuple(y.shape)))

    names = MODELS if args.model == "all" else (args.model,)
    results = []
    for name in names:
        r = bench_model(name, x, y, args)
        results.append(r)
        print("pytorch %s batch=%d threads=%d samples_per_s=%.1f (%.1f .. %.1f over %d repeats)"
              % (name, r["batch"], r["threads"], r["samples_per_s_median"],
                 r["samples_per_s_min"], r["samples_per_s_max"], r["repeats"]))
        sys.stdout.flush()

    if args.json:
        out = {
            "framework": "pytorch",
            "torch_version": torch.__version__,
            "mkldnn_available": torch.backends.mkldnn.is_available(),
            "num_threads": torch.get_num_threads(),
            "python": platform.python_version(),
            "data": source,
            "n": int(x.shape[0]),
            "optimizer": {"type": "SGD", "lr": 0.01, "momentum": 0.9},
            "results": results,
        }
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
