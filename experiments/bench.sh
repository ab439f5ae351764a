#!/usr/bin/env bash
# Rerun the benchmarks and rewrite experiments/RESULTS.md.
#
#   bash experiments/bench.sh all                    # every table (search: the reduced configuration below)
#   bash experiments/bench.sh engine|parallel|search|registry|local_model [script options...]
#   bash experiments/bench.sh results                # only rewrite RESULTS.md from experiments/results/*.json
#   bash experiments/bench.sh all --quick            # smoke run of every table, into a scratch folder
#   bash experiments/bench.sh search --full          # table 2 as published (3 datasets x 3 seeds, MIPROv2 first)
#
# Options after the table name go to its script (e.g. `bash experiments/bench.sh engine --rows 500`).
# The search runs a reduced configuration by default (REDUCED_SEARCH, about 25 minutes on an idle machine);
# options after `search` override it, SEARCH_ARGS replaces it, and `--full` runs the published one (3 datasets
# x 3 seeds, MIPROv2 first and its calls the others' budget: about 3 hours on 2 idle cores; --first-seed and
# --from-runs measure it in sittings, see experiments/bench_search.py).
#
# --quick writes to $QUICK_RESULTS (default: a folder under /tmp), never over experiments/results, and
# renders RESULTS.md there; bench_local_model.py cannot write elsewhere, so a quick `all` skips it (its smoke
# is tests/models/test_bench_local_model.py).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
export LITELLM_LOCAL_MODEL_COST_MAP=True HF_HUB_OFFLINE=1
REDUCED_SEARCH="--datasets sst2 --seeds 1 --methods ours-tpe random grid --trials 12 --validation-rows 40
  --test-rows 100"
RESULTS=experiments/results
OUT=experiments/RESULTS.md
QUICK=0
FULL=0
args=()
for arg in "$@"; do
  case "$arg" in
    --quick) QUICK=1; args+=("$arg") ;;
    --full) FULL=1 ;;
    *) args+=("$arg") ;;
  esac
done
set -- "${args[@]+"${args[@]}"}"
((FULL)) && REDUCED_SEARCH=""
if ((QUICK)); then
  RESULTS=${QUICK_RESULTS:-${TMPDIR:-/tmp}/promptopt-bench-quick}
  OUT=$RESULTS/RESULTS.md
  mkdir -p "$RESULTS"
fi

run() {
  local table=$1
  shift
  case "$table" in
    engine | parallel | registry) "$PY" "experiments/bench_$table.py" --results-dir "$RESULTS" "$@" ;;
    # Later options win, so options given here override the default configuration.
    # shellcheck disable=SC2086
    search) "$PY" experiments/bench_search.py --results-dir "$RESULTS" ${SEARCH_ARGS-$REDUCED_SEARCH} "$@" ;;
    local_model)
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
