#!/usr/bin/env bash
# One H200 session (device machine, repo root): GPU facts, check:gpu (conformance on every kernel
# variant), then bench:gpu against PyTorch SDPA. Logs and JSON go to $OUT.
# Run there with carry [".gpu", "dist", the *.generated.ts kernel sources]. Knobs: CHECK_FILTER, CHECK_S,
# SKIP_CHECK, PROFILE_ARGS (scripts/sgmat-profile.mjs arguments), DECODE_PROFILE=1 (scripts/decode-profile.mjs),
# PORTABLE_PROFILE=1 (scripts/portable-profile.mjs),
# BENCH_ARGS, BENCH_S, SKIP_BENCH, BASELINE (bench:gpu --baseline; default the last bench/results/gpu-h200-run-*.json in version order).
set -u
source .gpu/env.sh
export XDG_RUNTIME_DIR=/tmp PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv > "$OUT/gpu.txt" 2>&1
python3 -c "import torch; print('torch', torch.__version__, torch.version.cuda)" >> "$OUT/gpu.txt" 2>&1
timeout 60 node .gpu/probe.mjs > "$OUT/probe.txt" 2>&1
cat "$OUT/gpu.txt" "$OUT/probe.txt"
if [ "${SKIP_CHECK:-0}" != 1 ]; then
  timeout "${CHECK_S:-380}" node node_modules/vitest/vitest.mjs run --config vitest.gpu.config.ts ${CHECK_FILTER:+-t "$CHECK_FILTER"} > "$OUT/check-gpu.log" 2>&1
  echo "check:gpu exit $?"; grep -E "Tests |Test Files" "$OUT/check-gpu.log"; grep -E "^ +(×|✗)" "$OUT/check-gpu.log" | head -40
fi
if [ -n "${PROFILE_ARGS:-}" ]; then
  # e.g. PROFILE_ARGS='"" rb2': the tensor-core kernel as is and with an experiment, side by side.
  eval "timeout ${PROFILE_S:-120} node scripts/sgmat-profile.mjs $PROFILE_ARGS" > "$OUT/profile.txt" 2>&1
  echo "sgmat-profile exit $?"; grep -v "^ *at " "$OUT/profile.txt" | tail -8
fi
if [ "${PORTABLE_PROFILE:-0}" = 1 ]; then
  timeout "${PROFILE_S:-120}" node scripts/portable-profile.mjs > "$OUT/portable-profile.txt" 2>&1
  echo "portable-profile exit $?"; grep -v "^ *at " "$OUT/portable-profile.txt" | tail -4
fi
if [ "${DECODE_PROFILE:-0}" = 1 ]; then
  timeout "${PROFILE_S:-120}" node scripts/decode-profile.mjs > "$OUT/decode-profile.txt" 2>&1
  echo "decode-profile exit $?"; grep -v "^ *at " "$OUT/decode-profile.txt" | tail -6
fi
if [ "${SKIP_BENCH:-0}" != 1 ]; then
  # Against the last committed run (gpu-h200-run-*.json in version order; BASELINE=path to choose another, none for none): a kernel that
  # got slower shows as REGRESSION in the log (check:gpu passes slow kernels).
  BASELINE=${BASELINE:-$(ls bench/results/gpu-h200-run-*.json 2>/dev/null | grep -v -- -profile | sort -V | tail -1)}
  timeout "${BENCH_S:-240}" node scripts/run-bench.mjs --no-build gpu --out="$OUT/gpu.json" ${BASELINE:+$( [ "$BASELINE" != none ] && echo "--baseline=$BASELINE")} ${BENCH_ARGS:-} > "$OUT/bench-gpu.log" 2>&1
  echo "bench:gpu exit $?"; tail -40 "$OUT/bench-gpu.log"; grep REGRESSION "$OUT/bench-gpu.log"
fi
