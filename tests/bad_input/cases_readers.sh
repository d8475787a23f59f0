#!/usr/bin/env bash
# Bad input the fuzzers found in the readers (tests/fuzz/regressions/ keeps their raw inputs): each
# is refused with the file's name and what is wrong, exit 1, nothing touched.
source "$(dirname "$0")/lib.sh"

printf '{ "seed": 1e400 }\n' >"$tmp/overflow.json"
refused "config: a number beyond double" 1 "overflow.json|1e400|out of range" \
  "$bin" train "$tmp/overflow.json" --run-dir "$tmp/scratch/run"

printf '{ "base": "configs/mlp_synthetic.json", "sparsities": [1e400], "methods": { "a": {} } }\n' \
  >"$tmp/overflow_sweep.json"
refused "sweep: a number beyond double" 1 "overflow_sweep.json|1e400|out of range" \
  "$bin" sweep "$tmp/overflow_sweep.json" --dry-run

cp tests/fuzz/regressions/safetensors/header_number_overflow "$tmp/overflow.safetensors"
refused "checkpoint: a number beyond double in the header" 1 \
  "overflow.safetensors|header is not valid JSON|number overflow" \
  "$bin" eval "$tmp/overflow.safetensors"

cp tests/fuzz/regressions/safetensors/config_metadata_not_json "$tmp/bad_config.safetensors"
refused "checkpoint: config metadata that is not JSON" 1 \
  "bad_config.safetensors (config)|invalid JSON" \
  "$bin" eval "$tmp/bad_config.safetensors"

python3 -c 'import struct, sys; h = b"{\"a\":" + b"[" * 70000 + b"]" * 70000 + b"}"; sys.stdout.buffer.write(struct.pack("<Q", len(h)) + h)' \
  >"$tmp/deep.safetensors"
refused "checkpoint: a header nested 70000 levels deep" 1 "deep.safetensors|nested deeper than 64" \
  "$bin" info "$tmp/deep.safetensors"

refused "override: a value that is not UTF-8" 1 "override|not valid UTF-8" \
  "$bin" train configs/mlp_synthetic.json --set $'name=\xfa' --run-dir "$tmp/scratch/run"

refused "override: a layer index beyond 2^64" 1 "has no element 99999999999999999999999" \
  "$bin" train configs/layers_example.json --set model.layers.99999999999999999999999.kernel=3 \
  --run-dir "$tmp/scratch/run"

finish
