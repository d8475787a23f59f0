#!/usr/bin/env bash
# Bad input to the command line, configs, sweep files and datasets: every case is refused with a
# clear message (exit 1, never a crash) or, for valid input that used to be refused, accepted.
# Big inputs (deep JSON, a 50 MB string) are generated here, not committed.
source "$(dirname "$0")/lib.sh"
cfg=configs/mlp_synthetic.json
q=(--quiet --set train.epochs=1)

# A run to evaluate, resume and start from (made before the cases: it is an input they must not change).
"$bin" train "$cfg" "${q[@]}" --run-dir "$tmp/run" >/dev/null
"$bin" train "$cfg" "${q[@]}" --set data.synthetic.height=8 --set data.synthetic.width=8 \
  --run-dir "$tmp/run8" >/dev/null
"$bin" train configs/lenet300_mnist.json --quiet --set train.epochs=1 --set 'model.arch="mlp"' \
  --set 'model.hidden=[8]' --set train.batch_size=512 --set lr_schedule.warmup_epochs=0 --run-dir "$tmp/mnist_run" >/dev/null

deep() { python3 -c "import sys; n=int(sys.argv[1]); print('['*n + ']'*n)" "$1"; }
deep 60000 >"$tmp/deep.json"
python3 - "$cfg" "$tmp/deep_value.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); text = json.dumps(c)
open(sys.argv[2], "w").write(text[:-1] + ', "pruning": ' + "[" * 60000 + "]" * 60000 + "}")
PY
printf '{"base": "../configs/mlp_synthetic.json", "methods": %s}' "$(deep 60000)" >"$tmp/deep_sweep.json"

# 1. JSON nested beyond any config: refused while parsing, before anything recurses on it.
refused "deep config file" 1 "deep.json|nested deeper than 64" "$bin" train "$tmp/deep.json"
refused "deep config value" 1 "deep_value.json|nested deeper than 64|pruning" "$bin" train "$tmp/deep_value.json"
refused "deep --set value" 1 "model.hidden|nested deeper than 64" "$bin" train "$cfg" --set "model.hidden=$(deep 20000)"
refused "deep sweep file" 1 "deep_sweep.json|nested deeper than 64" "$bin" sweep "$tmp/deep_sweep.json" --dry-run
refused "a shard past the shard count" 1 "--shard 4/4|expected I/N with 0 <= I < N" "$bin" sweep "$tmp/deep_sweep.json" --shard 4/4

# 2. Valid input that used to be refused.
accepted "rigl's default end_epoch on 1 epoch" "$bin" train "$cfg" "${q[@]}" --run-dir "$tmp/scratch/rigl1" \
  --set 'pruning={"method": "rigl", "target": 0.5}'
accepted "rigl's default end_epoch on 2 epochs" "$bin" train "$cfg" --quiet --set train.epochs=2 \
  --run-dir "$tmp/scratch/rigl2" --set 'pruning={"method": "rigl", "target": 0.5}'
accepted "iterative's defaults on 2 epochs" "$bin" train "$cfg" --quiet --set train.epochs=2 \
  --run-dir "$tmp/scratch/iter2" --set 'pruning={"method": "iterative", "target": 0.5}'
accepted "eval a synthetic run on mnist" "$bin" eval "$tmp/run" --dataset mnist
accepted "eval an mnist run on synthetic" "$bin" eval "$tmp/mnist_run" --dataset synthetic
refused "eval on a dataset of another shape" 1 "--dataset mnist|1x28x28|1x8x8" "$bin" eval "$tmp/run8" --dataset mnist
accepted "--init-from a run folder" "$bin" train "$cfg" "${q[@]}" --init-from "$tmp/run" --run-dir "$tmp/scratch/init"
mkdir -p "$tmp/emptytest"
ln -s "$(pwd)/datasets/mnist/"train-* "$tmp/emptytest/"
python3 - "$tmp/emptytest" <<'PY'
import struct, sys
open(sys.argv[1] + "/t10k-images-idx3-ubyte", "wb").write(struct.pack(">iiii", 0x803, 0, 28, 28))
open(sys.argv[1] + "/t10k-labels-idx1-ubyte", "wb").write(struct.pack(">ii", 0x801, 0))
PY
refused "an empty test split" 1 "t10k-images-idx3-ubyte|holds no images" \
  "$bin" train configs/lenet300_mnist.json --set data.dir="$tmp/emptytest" --run-dir "$tmp/scratch/empty"

# 3. Flags that would be ignored are refused.
refused "--init-from with --resume" 1 "--resume|--init-from" "$bin" train --resume "$tmp/run" --init-from "$tmp/nope"
refused "--run-dir with --resume" 1 "--resume|--run-dir" "$bin" train --resume "$tmp/run" --run-dir "$tmp/scratch/r"
refused "--stop-after -1" 1 "--stop-after" "$bin" train "$cfg" "${q[@]}" --stop-after -1 --run-dir "$tmp/scratch/s"
refused "--stop-after 0" 1 "--stop-after|1 to 2147483647" "$bin" train "$cfg" "${q[@]}" --stop-after 0 --run-dir "$tmp/scratch/s"
refused "--stop-after beyond the run" 1 "--stop-after 5|3 epochs" "$bin" train "$cfg" --stop-after 5 --run-dir "$tmp/scratch/s"
refused "eval --threads -1" 1 "--threads" "$bin" eval "$tmp/run" --threads -1
refused "eval --data-dir on synthetic" 1 "--data-dir|synthetic" "$bin" eval "$tmp/run" --data-dir "$tmp/emptytest"
refused "sweep --points with --dry-run" 1 "--points|--dry-run" "$bin" sweep configs/sweep_lenet300_mnist.json --dry-run --points 1
refused "bench --mode without --sparsity" 1 "--mode|--sparsity" "$bin" bench train --mode csr

# 4. Messages that name the file, key and value.
printf '{"data": {"dataset": "synthetic"}, "model": {"arch": "mlp", "hidden": [8]},\n "optimizer": {"lr": 1e400}}' >"$tmp/huge_number.json"
refused "1e400 in a config" 1 "huge_number.json|line 2|optimizer.lr|out of range" "$bin" train "$tmp/huge_number.json"
refused "1e400 in --set" 1 "optimizer.lr|out of range" "$bin" train "$cfg" --set optimizer.lr=1e400
refused "a model too big for memory" 1 "model.hidden|bytes" "$bin" train "$cfg" --set 'model.hidden=[1000000,1000000]' \
  --run-dir "$tmp/scratch/big"
refused "a batch too big for memory" 1 "train.batch_size|bytes" "$bin" train "$cfg" --set train.batch_size=2000000000 \
  --run-dir "$tmp/scratch/big"
refused "a dataset too big for memory" 1 "data.synthetic|bytes" "$bin" train "$cfg" \
  --set data.synthetic.train=2000000000 --set data.synthetic.height=1000 --run-dir "$tmp/scratch/big"
refused "more micro-batches than samples in a batch" 1 "train.micro_batches = 65|train.batch_size = 64" \
  "$bin" train "$cfg" --set train.micro_batches=65 --set train.batch_size=64 --run-dir "$tmp/scratch/parts"
refused "negative micro-batches" 1 "train.micro_batches" "$bin" train "$cfg" --set train.micro_batches=-1 \
  --run-dir "$tmp/scratch/parts"
refused "bench distributed --model mlp without --hidden" 1 "--hidden" "$bin" bench distributed --model mlp
refused "a misspelled command" 1 'unknown command "trian"|did you mean "train"' "$bin" trian "$cfg"
refused "a misspelled bench command" 1 'unknown command "kernel"|did you mean "kernels"' "$bin" bench kernel
refused "a misspelled option" 1 'unknown option "--sparsityy" for "bench train"|did you mean "--sparsity"' \
  "$bin" bench train --sparsityy 0.9
refused "an unknown option before any command" 1 'unknown option "--bogus" for "sparsetrain"' "$bin" --bogus
mkdir -p "$tmp/a_dir.json"
refused "a directory as config" 1 "a_dir.json|is a directory" "$bin" train "$tmp/a_dir.json"
refused "a directory as sweep file" 1 "a_dir.json|is a directory" "$bin" sweep "$tmp/a_dir.json"
mkdir -p "$tmp/dirdata/train-images-idx3-ubyte"
refused "a directory as an IDX file" 1 "train-images-idx3-ubyte|is a directory" \
  "$bin" train configs/lenet300_mnist.json --set data.dir="$tmp/dirdata" --run-dir "$tmp/scratch/d"
refused "a file as data.dir" 1 "huge_number.json|is a file" \
  "$bin" train configs/lenet300_mnist.json --set data.dir="$tmp/huge_number.json" --run-dir "$tmp/scratch/d"
refused "--init-from a folder without a checkpoint" 1 "--init-from|a_dir.json|checkpoint.safetensors" \
  "$bin" train "$cfg" "${q[@]}" --init-from "$tmp/a_dir.json" --run-dir "$tmp/scratch/i"
for flag in --csv --md --svg; do
  refused "bench kernels $flag unwritable" 1 "$flag|$tmp/nope" "$bin" bench kernels --quick --shapes 100x300x64 \
    "$flag" "$tmp/nope/out"
done
refused "bench train --json unwritable" 1 "--json|$tmp/nope" "$bin" bench train --json "$tmp/nope/out.json"
python3 - "$cfg" "$tmp/long_string.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); c["data"]["dataset"] = "x" * 50_000_000
json.dump(c, open(sys.argv[2], "w"))
PY
refused "a 50 MB value is not echoed whole" 1 "data.dataset|50000000 bytes" "$bin" train "$tmp/long_string.json"
[ "$(wc -c <"$tmp/out")" -lt 2000 ] && ok || fail "the 50 MB value came back in a $(wc -c <"$tmp/out")-byte message"
rm -f "$tmp/long_string.json"

# The kernels' instruction set: a typo or a set this CPU lacks stops the command before it starts.
refused "an unknown SPARSETRAIN_ISA" 1 "SPARSETRAIN_ISA|\"avx3\"|expected avx512, avx2 or generic" \
  env SPARSETRAIN_ISA=avx3 "$bin" train "$cfg"
if grep -q avx512f /proc/cpuinfo; then
  skip "SPARSETRAIN_ISA naming a set this CPU lacks" "this CPU runs every set"
else
  refused "SPARSETRAIN_ISA naming a set this CPU lacks" 1 "SPARSETRAIN_ISA=avx512|this CPU cannot run" \
    env SPARSETRAIN_ISA=avx512 "$bin" train "$cfg"
fi
accepted "SPARSETRAIN_ISA=generic" env SPARSETRAIN_ISA=generic "$bin" device

finish
