#!/usr/bin/env bash
# One entry point for a fresh machine: sets up everything, then runs the demo or the tests.
#   bash scripts/dev.sh demo    # set-up + the main job on the embedded model (no API key, no network)
#   bash scripts/dev.sh test    # set-up + static checks + services + the test suite
#   bash scripts/dev.sh check   # set-up + static checks only: ruff check, ruff format --check, mypy (strict)
#   bash scripts/dev.sh setup   # set-up only
# Idempotent: a second run skips what is already in place.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
VENV=${PROMPTOPT_VENV:-$ROOT/.venv}
LLAMA_VERSION=0.3.36
# Why our own wheel folder: pip's wheel cache does not know CMAKE_ARGS, and a native build of llama.cpp
# segfaults on these machines (AMX kernels). The portable wheel is built once and kept here.
WHEELS=${PROMPTOPT_WHEEL_DIR:-$HOME/.cache/promptopt/wheels/llama-portable-v1}
export LITELLM_LOCAL_MODEL_COST_MAP=True PIP_DISABLE_PIP_VERSION_CHECK=1

log() { printf '\033[1m[dev]\033[0m %s\n' "$*" >&2; }

setup() {
  "$PY" -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required"'
  [ -x "$VENV/bin/python" ] || { log "creating $VENV"; "$PY" -m venv "$VENV"; }
  local pip="$VENV/bin/python -m pip"
  stamp="$VENV/.promptopt-installed-$(cat pyproject.toml setup.py constraints.txt | sha256sum | cut -c1-16)"
  if [ -f "$stamp" ]; then return 0; fi
  $pip install -q --upgrade "pip==25.3" "setuptools==80.9.0" "wheel==0.48.0"
  if ! ls "$WHEELS"/llama_cpp_python-$LLAMA_VERSION-*.whl >/dev/null 2>&1; then
    log "building a portable llama-cpp-python $LLAMA_VERSION (about 6 minutes on 2 cores, once)"
    mkdir -p "$WHEELS"
    CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON" \
      $pip wheel --no-cache-dir --no-deps -w "$WHEELS" "llama-cpp-python==$LLAMA_VERSION"
  fi
  $pip install -q --no-deps "$WHEELS"/llama_cpp_python-$LLAMA_VERSION-*.whl
  log "installing the project and its pinned dependencies"
  $pip install -q -c constraints.txt -e ".[dev,finetune]"
  rm -f "$VENV"/.promptopt-installed-*
  touch "$stamp"
}

browser() {
  # Headless Chromium for the report's browser test, wrk for the registry benchmark's load (Debian's packages).
  if ! command -v chromium >/dev/null 2>&1 || ! command -v wrk >/dev/null 2>&1; then
    log "installing Chromium and wrk"; apt-get update -qq && apt-get install -y -qq chromium wrk >/dev/null
  fi
}

services() {
  # PostgreSQL and Redis for the store and cache tests; started only when not already running.
  if ! (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; then
    log "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start
  fi
  if ! (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then
    if ! command -v redis-server >/dev/null 2>&1; then
      log "installing Redis"; apt-get update -qq && apt-get install -y -qq redis-server >/dev/null
    fi
    log "starting Redis"
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
  fi
}

check() {
  # Tooling that CI does not run is decoration: each of these fails the test command.
  local failed=0
  log "ruff check"; "$VENV/bin/ruff" check . || failed=1
  log "ruff format --check"; "$VENV/bin/ruff" format --check . || failed=1
  log "mypy (strict, scripts/typecheck.py)"; "$VENV/bin/python" scripts/typecheck.py || failed=1
  [ "$failed" = 0 ] || { log "static checks failed (fix: ruff check --fix . && ruff format .)"; return 1; }
}

case "${1:-}" in
  setup) setup ;;
  check) setup; check ;;
  demo)
    setup
    cd experiments/demo
    # shellcheck disable=SC2086
    "$VENV/bin/optimize" run spec.yaml ${DEMO_ARGS:-}
    ;;
  test)
    setup
    check
    services
    browser
    shift
    set +e
    "$VENV/bin/python" -m pytest "$@"
    code=$?
    set -e
    [ "$code" = 5 ] && { echo "no tests collected"; exit 1; }
    exit "$code"
    ;;
  *) echo "usage: bash scripts/dev.sh {demo|test|check|setup} [pytest args]" >&2; exit 2 ;;
esac
