#!/usr/bin/env bash
# On the device machine (repo root, .gpu carried): compiles the tensor-core prefill kernel in several forms, each
# with the NVIDIA driver's shader disk cache pointed at a fresh folder, times each form, and disassembles the
# machine code (SASS) the driver left in the cache (scripts/sass-dump.py: zstd-compressed entries, code found
# by its EXIT instruction, nvdisasm from CUDA). Vulkan gives no other view of the code the driver made.
# Usage: OUT=$OUT [ONLY='8k B1 H16'] [VARIANTS='""; lidrow; nonk'] [ROBUST=0] bash scripts/sass-dump.sh
# VARIANTS: ablation strings (setSgmatAblation) separated by ';'. Writes $OUT/sass/v<i>/{k.sass,summary.txt}.
set -u
source .gpu/env.sh
export XDG_RUNTIME_DIR=/tmp
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT/sass"
export __GL_SHADER_DISK_CACHE=1 __GL_SHADER_DISK_CACHE_SKIP_CLEANUP=1 __GL_SHADER_DISK_CACHE_SIZE=4000000000
export ONLY=${ONLY:-8k B1 H16}
IFS=';' read -ra vs <<< "${VARIANTS:-}"
[ ${#vs[@]} -gt 0 ] || vs=("")
i=0
for v in "${vs[@]}"; do
  v=$(echo "$v" | xargs)
  cache=/tmp/nvc$i; rm -rf "$cache"; mkdir -p "$cache"
  echo "=== v$i: '$v'"
  __GL_SHADER_DISK_CACHE_PATH=$cache timeout 120 node scripts/sgmat-profile.mjs "$v" 2>&1 | grep -v "^node v"
  python3 scripts/sass-dump.py "$OUT/sass/v$i" "$cache" 2>&1 | tail -6
  i=$((i + 1))
done
