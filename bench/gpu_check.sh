#!/usr/bin/env bash
# gpu-cupy on a machine with a CUDA GPU, in one go:
#   1. the GPU tests (pytest -m gpu), then the kernels' throughput (bench/gpu_kernels.py);
#   2. `sealagent bench` with gpu-cupy at each size (default 8MiB and 512MiB);
#   3. PreCommit2 byte identity: bench/pc2_identity.py runs PC2 with gpu-cupy and with the
#      reference from the same PC1 files and compares every file.  The reference is
#      `multicore` when it is installed and available, else `cpu` (at 512MiB only with
#      GPU_CHECK_CPU_512=1: cpu PC2 of 512MiB takes hours);
#   4. a summary naming the GPU: bench/results/gpu-check-<device>-<date>.json.
# Everything lands in bench/results/; the exit status is non-zero if any step failed.
#
#   bench/gpu_check.sh                       # 8MiB and 512MiB
#   GPU_CHECK_SIZES=8MiB bench/gpu_check.sh  # one size
set -uo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-.venv/bin/python}
SIZES=${GPU_CHECK_SIZES:-"8MiB 512MiB"}
MULTICORE=${GPU_CHECK_MULTICORE:-multicore}
OUT=bench/results
DATE=$(date -u +%Y-%m-%d)
mkdir -p "$OUT"

device=$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -n 1)
if [ -z "$device" ]; then
    echo "gpu_check: nvidia-smi finds no GPU" >&2
    exit 2
fi

available() {  # available NAME: the plugin is installed and can run here
    "$PY" -m sealagent plugins --json | "$PY" -c \
        "import json,sys; sys.exit(0 if any(p['name']=='$1' and p['available'] for p in json.load(sys.stdin)) else 1)"
}

if ! available gpu-cupy; then
    echo "gpu_check: gpu-cupy cannot run here:" >&2
    "$PY" -m sealagent plugins | grep -E '^(NAME|gpu-cupy)' >&2
    exit 2
fi

slug=$(printf '%s' "${device%%,*}" | tr -cs 'A-Za-z0-9' '-' | sed 's/-$//')
tag="$slug-$DATE"
log="$OUT/gpu-check-$tag.log"
: >"$log"
steps=()

run_step() {  # run_step NAME COMMAND...: run, log, remember the exit status
    local name=$1
    shift
    echo "== $name: $*" | tee -a "$log"
    local start=$SECONDS
    "$@" 2>&1 | tee -a "$log"
    local rc=${PIPESTATUS[0]}
    steps+=("$name=$rc=$((SECONDS - start))")
    echo "== $name: exit $rc after $((SECONDS - start)) s" | tee -a "$log"
}

prep=cpu
reference=cpu
if available "$MULTICORE"; then
    prep=$MULTICORE
    reference=$MULTICORE
fi
bench_plugins=(--plugin gpu-cupy)
[ "$prep" != cpu ] && bench_plugins+=(--plugin "$prep")

run_step gpu-tests "$PY" -m pytest -q -m gpu tests/gpu
run_step kernels "$PY" bench/gpu_kernels.py --json "$OUT/gpu-kernels-$tag.json"
for size in $SIZES; do
    run_step "bench-$size" "$PY" -m sealagent bench --sector-size "$size" "${bench_plugins[@]}" \
        --isolate --json "$OUT/gpu-cupy-seal-$size-$tag.json"
    if [ "$reference" = cpu ] && [ "$size" = 512MiB ] && [ -z "${GPU_CHECK_CPU_512:-}" ]; then
        echo "== identity-$size: skipped (no $MULTICORE backend; cpu PC2 of 512MiB takes hours)" \
            | tee -a "$log"
        steps+=("identity-$size=skipped=0")
        continue
    fi
    run_step "identity-$size" "$PY" bench/pc2_identity.py --sector-size "$size" \
        --candidate gpu-cupy --reference "$reference" --prep "$prep" \
        --json "$OUT/gpu-cupy-identity-$size-$tag.json"
done

"$PY" - "$OUT/gpu-check-$tag.json" "$device" "$reference" "${steps[@]}" <<'PYEOF'
import datetime, json, platform, sys
path, device, reference, *steps = sys.argv[1:]
rows = [dict(zip(("step", "exit", "seconds"), s.split("="))) for s in steps]
summary = {"date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
           "host": platform.node(), "device": device, "reference": reference, "steps": rows}
open(path, "w").write(json.dumps(summary, indent=2) + "\n")
print(json.dumps(summary, indent=2))
PYEOF

for step in "${steps[@]}"; do
    rc=$(echo "$step" | cut -d= -f2)
    if [ "$rc" != 0 ] && [ "$rc" != skipped ]; then
        exit 1
    fi
done
exit 0
