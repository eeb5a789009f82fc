#!/usr/bin/env bash
# One command for a GPU machine without network: build, GPU tests, benchmarks, report.
#   bash benchmarks/run_gpu.sh OUTDIR [pytest -k expression for the benchmarks]
# Writes OUTDIR/build.log, OUTDIR/tests.log, OUTDIR/bench.json, OUTDIR/bench.log and OUTDIR/RESULTS.md.
# Copy OUTDIR/RESULTS.md over benchmarks/RESULTS.md to record a run (never edit the numbers by hand).
set -uo pipefail
OUT=${1:?usage: run_gpu.sh OUTDIR [benchmark -k expression]}
KEXPR=${2:-}
mkdir -p "$OUT"
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 CUDA_HOME=${CUDA_HOME:-/usr/local/cuda} MAX_JOBS=${MAX_JOBS:-16}

start=$(date +%s)
pip install --no-build-isolation --no-deps -e . > "$OUT/build.log" 2>&1 || { tail -50 "$OUT/build.log"; exit 1; }
echo "build: $(( $(date +%s) - start )) s"
python -m ganops | tee "$OUT/diagnostics.txt" | sed -n '1,40p'

python -m pytest tests -q -x -p no:cacheprovider -m "not slow" > "$OUT/tests.log" 2>&1
tests_rc=$?
tail -30 "$OUT/tests.log"
echo "tests rc=$tests_rc after $(( $(date +%s) - start )) s"

python -m pytest benchmarks --benchmark-only -q -p no:cacheprovider ${KEXPR:+-k "$KEXPR"} \
  --benchmark-json="$OUT/bench.json" > "$OUT/bench.log" 2>&1
bench_rc=$?
tail -5 "$OUT/bench.log"
python -m benchmarks.report "$OUT/bench.json" --out "$OUT/RESULTS.md" && cat "$OUT/RESULTS.md"
echo "benchmarks rc=$bench_rc after $(( $(date +%s) - start )) s"
exit $(( tests_rc || bench_rc ))
