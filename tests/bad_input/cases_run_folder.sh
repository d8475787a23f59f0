#!/usr/bin/env bash
# tests/bad_input/cases_run_folder.sh — nothing a run wrote is lost: a new run (or --init-from) into
# a folder that holds a run, export --out over a run's checkpoint, a second process on a folder in
# use, resumes that fail (damaged checkpoint, missing device) and checkpoints holding NaN or Inf are
# all refused with every existing file unchanged; a killed writer's temp file does not survive the
# next start.
. "$(dirname "$0")/lib.sh"

cfg=configs/mlp_synthetic.json
train=("$bin" train "$cfg" --set train.epochs=2 --quiet)

# Writes NaN over the first value of the checkpoint's first tensor (fc1.weight): the data starts
# after the 8-byte header length and the header.
poison() {
  local header
  header=$(od -An -t u8 -N8 "$1" | tr -d ' ')
  printf '\x00\x00\xc0\x7f' | dd of="$1" bs=1 seek=$((8 + header)) conv=notrunc status=none
}

"${train[@]}" --run-dir "$tmp/done" >/dev/null
"${train[@]}" --run-dir "$tmp/part" --stop-after 1 >/dev/null
mkdir -p "$tmp/empty_in_use"

refused "train into a finished run" 1 "run folder \"$tmp/done\" already holds a finished run|summary.json|another --run-dir" \
  "${train[@]}" --run-dir "$tmp/done"
refused "train into an interrupted run" 1 "run folder \"$tmp/part\" already holds an interrupted run|train --resume $tmp/part" \
  "${train[@]}" --run-dir "$tmp/part"
echo "notes" >"$tmp/a_file"
refused "--run-dir that is a file" 1 "run folder \"$tmp/a_file\" is a file, not a folder" \
  "${train[@]}" --run-dir "$tmp/a_file"
refused "--init-from a run's checkpoint into that run" 1 "already holds a finished run" \
  "${train[@]}" --init-from "$tmp/done/checkpoint.safetensors" --run-dir "$tmp/done"
refused "resume a finished run" 1 "run folder \"$tmp/done\" holds a finished run|nothing to resume" \
  "$bin" train --resume "$tmp/done"

refused "export over its own input" 1 "--out \"$tmp/part/checkpoint.safetensors\" is the input checkpoint" \
  "$bin" export "$tmp/part" --compact --out "$tmp/part/checkpoint.safetensors"
refused "export over another run's checkpoint" 1 "is a file of the run in \"$tmp/done\"|checkpoint.safetensors" \
  "$bin" export "$tmp/part" --compact --out "$tmp/done/checkpoint.safetensors"
refused "export over a run's metrics" 1 "is a file of the run in|metrics.jsonl" \
  "$bin" export "$tmp/part" --compact --out "$tmp/done/metrics.jsonl"

# Another process holds the folder (flock(1) stands in for a second sparsetrain).
refused "resume a run in use" 1 "run folder \"$tmp/part\" is in use by another sparsetrain process (pid " \
  flock -o "$tmp/part" "$bin" train --resume "$tmp/part"
refused "train into a folder in use" 1 "run folder \"$tmp/empty_in_use\" is in use by another sparsetrain process" \
  flock -o "$tmp/empty_in_use" "$bin" train "$cfg" --run-dir "$tmp/empty_in_use"

# Resumes that fail before they start leave the run as it was.
cp -r "$tmp/part" "$tmp/damaged"
truncate -s 1000 "$tmp/damaged/checkpoint.safetensors"
refused "resume a damaged checkpoint" 1 "$tmp/damaged/checkpoint.safetensors|truncated" \
  "$bin" train --resume "$tmp/damaged"
# ctest switches the emulated device on; without it an emulated build has no cuda device.
if env -u SPARSETRAIN_CUDA_EMULATION "$bin" device | grep -q '^device: none'; then
  refused "resume on a missing device" 1 "asks for device \"cuda\"" \
    env -u SPARSETRAIN_CUDA_EMULATION "$bin" train --resume "$tmp/part" --device cuda
else
  skip "resume on a missing device" "this machine has a GPU"
fi

# NaN in a checkpoint: refused wherever it is loaded.
cp -r "$tmp/part" "$tmp/nan"
poison "$tmp/nan/checkpoint.safetensors"
nan_words="tensor \"fc1.weight\" holds a non-finite value (nan at index 0)"
refused "eval a checkpoint holding NaN" 1 "$nan_words" "$bin" eval "$tmp/nan"
refused "--init-from a checkpoint holding NaN" 1 "$nan_words" \
  "${train[@]}" --init-from "$tmp/nan/checkpoint.safetensors" --run-dir "$tmp/from_nan"
refused "resume a checkpoint holding NaN" 1 "$nan_words" "$bin" train --resume "$tmp/nan"
refused "export a checkpoint holding NaN" 1 "$nan_words" \
  "$bin" export "$tmp/nan" --compact --out "$tmp/scratch/small.safetensors"

# Weights that go Inf stop the run at that step, naming the parameter.
refused "parameters going non-finite" 1 "training diverged: parameter \"fc1.weight\"|after epoch 1, step 1" \
  "${train[@]}" --set optimizer.type=sgd --set optimizer.lr=1e30 --set optimizer.weight_decay=1e30 --run-dir "$tmp/scratch/div"

# A checkpoint write killed midway left its temp file: the next start under the lock removes it.
echo "half a checkpoint" >"$tmp/part/checkpoint.safetensors.tmp.999999"
accepted "resume removes a killed writer's temp file" "$bin" train --resume "$tmp/part" --quiet
[ ! -e "$tmp/part/checkpoint.safetensors.tmp.999999" ] && ok || fail "the stale temp file is still there"

finish
