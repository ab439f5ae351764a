#!/usr/bin/env bash
# Rerun the benchmarks and rewrite experiments/RESULTS.md.
#
#   bash experiments/bench.sh all                    # every table (search: the reduced configuration below)
#   bash experiments/bench.sh engine|parallel|search|registry|local_model [script options...]
#   bash experiments/bench.sh results                # only rewrite RESULTS.md from experiments/results/*.json
#   bash experiments/bench.sh all --quick            # smoke run of every table, into a scratch folder
#
# Options after the table name go to its script (e.g. `bash experiments/bench.sh engine --rows 500`).
# The search runs a reduced configuration by default (REDUCED_SEARCH, about 25 minutes on an idle machine);
# options after `search` override it, SEARCH_ARGS replaces it, and the full one (3 datasets x 3 seeds x
# 4 methods, 40 trials, many hours on 2 cores) is `.venv/bin/python experiments/bench_search.py`.
#
# --quick writes to $QUICK_RESULTS (default: a folder under /tmp), never over experiments/results, and
# renders RESULTS.md there; bench_registry.py and bench_local_model.py cannot write elsewhere, so a quick
# `all` skips them.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
export LITELLM_LOCAL_MODEL_COST_MAP=True HF_HUB_OFFLINE=1
REDUCED_SEARCH="--datasets sst2 --seeds 1 --methods ours-tpe random grid --trials 12 --validation-rows 40
  --test-rows 100"
RESULTS=experiments/results
OUT=experiments/RESULTS.md
QUICK=0
for arg in "$@"; do [[ "$arg" == --quick ]] && QUICK=1; done
if ((QUICK)); then
  RESULTS=${QUICK_RESULTS:-${TMPDIR:-/tmp}/promptopt-bench-quick}
  OUT=$RESULTS/RESULTS.md
  mkdir -p "$RESULTS"
fi

run() {
  local table=$1
  shift
  case "$table" in
    engine | parallel) "$PY" "experiments/bench_$table.py" --results-dir "$RESULTS" "$@" ;;
    # Later options win, so options given here override the default configuration.
    # shellcheck disable=SC2086
    search) "$PY" experiments/bench_search.py --results-dir "$RESULTS" ${SEARCH_ARGS:-$REDUCED_SEARCH} "$@" ;;
    registry | local_model)
      if ((QUICK)); then
        echo "skipping $table with --quick (its script writes only to experiments/results)" >&2
      else
        "$PY" "experiments/bench_$table.py" "$@"
      fi ;;
    results) ;;
    *) echo "usage: $0 all|engine|parallel|search|registry|local_model|results [--quick] [options]" >&2; exit 2 ;;
  esac
}

target=${1:-all}
shift || true
if [[ "$target" == all ]]; then
  only_quick=()
  ((QUICK)) && only_quick=(--quick)
  for table in engine parallel search registry local_model; do
    echo "== $table" >&2
    run "$table" "${only_quick[@]}"
  done
else
  run "$target" "$@"
fi
"$PY" experiments/make_results.py --results-dir "$RESULTS" --out "$OUT"
