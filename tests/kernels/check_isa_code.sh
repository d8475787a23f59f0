#!/usr/bin/env bash
# tests/kernels/check_isa_code.sh BINARY — the instruction-set hygiene of a build (kernels/isa.h):
# AVX-512 instructions (zmm, mask registers, xmm/ymm16-31) appear only in functions of the
# st::kernels::avx512 copy, and AVX/AVX2 (VEX) instructions only in the avx512 and avx2 copies, so
# the binary starts and runs on any x86-64 CPU. A function outside those namespaces with such code
# would be a copy the linker took from a per-set object (an inline or template instantiated there),
# and would crash a CPU without that set. Skipped (77) when the build used SPARSETRAIN_NATIVE=ON.
set -euo pipefail
bin=$1
cache=${2:-}
if [[ -n "$cache" ]] && grep -q "^SPARSETRAIN_NATIVE:BOOL=ON" "$cache"; then
  echo "skipped: SPARSETRAIN_NATIVE=ON builds the whole binary for this CPU"
  exit 77
fi
command -v objdump >/dev/null || { echo "skipped: objdump not installed"; exit 77; }
objdump -d --no-show-raw-insn -C "$bin" | awk '
  /^[0-9a-f]+ <.*>:$/ { fn = $0; next }
  NF < 2 { next }
  {
    avx512 = ($0 ~ /%zmm|%k[0-7]|\{%k|%[xy]mm(1[6-9]|2[0-9]|3[01])/)
    split($0, part, "\t"); insn = part[2]
    vex = (insn ~ /^v[a-z]/ && insn !~ /^verr|^verw/)
    if (avx512 && fn !~ /st::kernels::avx512::/) bad[fn] = "AVX-512"
    else if (vex && fn !~ /st::kernels::(avx512|avx2)::/) bad[fn] = "AVX"
  }
  END {
    n = 0
    for (name in bad) { print bad[name] " code outside its kernel copy: " name; ++n }
    if (n) exit 1
    print "ok: AVX code only in the st::kernels::avx2 and ::avx512 copies"
  }'
