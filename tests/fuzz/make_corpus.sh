#!/usr/bin/env bash
# Regenerates the seed corpora of tests/fuzz/corpus/ (small real inputs, a few KB each): the shipped
# configs (some with --set overrides), the shipped sweeps and an inline one, tiny IDX files raw and
# gzipped, and checkpoints written by the trainer for fuzz_safetensors' fixed model (a dense one
# and a pruned one saved in CSR). Run from anywhere: tests/fuzz/make_corpus.sh <sparsetrain binary>
set -euo pipefail
bin=$(realpath "$1")
cd "$(dirname "$0")/../.."
out=tests/fuzz/corpus
rm -rf "$out"
mkdir -p "$out"/{config,sweep,idx,safetensors}

# config: the file, then NUL-separated overrides (fuzz_config.cpp).
for f in configs/*.json; do
  case $f in configs/sweep_*) continue ;; esac
  cp "$f" "$out/config/$(basename "$f")"
done
printf '%s\0%s\0%s' "$(cat configs/mlp_synthetic.json)" 'train.epochs=2' 'model.hidden=[8,4]' \
  >"$out/config/mlp_synthetic_overrides"
printf '%s\0%s\0%s' "$(cat configs/layers_example.json)" 'model.layers[0].kernel=3' \
  'pruning.target=0.5' >"$out/config/layers_overrides"

# sweep: the shipped ones (their base paths resolve from the repository root) and an inline base.
cp configs/sweep_*.json "$out/sweep/"
cat >"$out/sweep/inline_base.json" <<'JSON'
{ "name": "tiny", "base": { "data": { "dataset": "synthetic" }, "model": { "arch": "mlp", "hidden": [4] },
    "pruning": { "method": "one_shot", "target": 0.5 } },
  "overrides": { "train.epochs": 1 }, "sparsities": [0.5, 0.9],
  "methods": { "oneshot": { "pruning": { "method": "one_shot" } },
               "gradual": { "pruning.method": "gradual" } },
  "dense_baseline": true, "output": "scratch/tiny" }
JSON

# idx: one file per element type, big-endian, and gzipped twins of two of them.
python3 - "$out/idx" <<'PY'
import gzip, struct, sys
d = sys.argv[1]
def idx(code, dims, payload):
    return bytes([0, 0, code, len(dims)]) + b"".join(struct.pack(">I", n) for n in dims) + payload
files = {
    "u8_images": idx(0x08, [2, 3, 3], bytes(range(18))),
    "u8_labels": idx(0x08, [4], bytes([0, 9, 3, 7])),
    "i8": idx(0x09, [3], struct.pack(">3b", -1, 0, 1)),
    "i16": idx(0x0B, [2], struct.pack(">2h", -300, 300)),
    "i32": idx(0x0C, [2, 1], struct.pack(">2i", -70000, 70000)),
    "f32": idx(0x0D, [2], struct.pack(">2f", 0.5, -1.25)),
    "f64": idx(0x0E, [1], struct.pack(">d", 3.0)),
}
for name, data in files.items():
    open(f"{d}/{name}", "wb").write(data)
for name in ("u8_images", "f32"):
    open(f"{d}/{name}.gz", "wb").write(gzip.compress(files[name], mtime=0))
PY

# safetensors: the model of fuzz_safetensors.cpp (MLP [4], 1x4x4 inputs, 3 classes, Adam).
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/tiny.json" <<'JSON'
{ "name": "tiny", "seed": 1, "threads": 1,
  "data": { "dataset": "synthetic",
            "synthetic": { "train": 64, "test": 16, "classes": 3, "channels": 1, "height": 4, "width": 4 } },
  "model": { "arch": "mlp", "hidden": [4] }, "train": { "epochs": 1, "batch_size": 16 },
  "optimizer": { "type": "adam", "lr": 0.01 } }
JSON
"$bin" train "$tmp/tiny.json" --run-dir "$tmp/dense" -q >/dev/null
cp "$tmp/dense/checkpoint.safetensors" "$out/safetensors/dense.safetensors"
"$bin" train "$tmp/tiny.json" --run-dir "$tmp/csr" -q \
  --set 'pruning={"method":"one_shot","target":0.8,"schedule":{"epoch":0}}' --set sparse.threshold=0.5 >/dev/null
cp "$tmp/csr/checkpoint.safetensors" "$out/safetensors/pruned_csr.safetensors"
du -sh "$out"
