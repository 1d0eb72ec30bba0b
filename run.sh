#!/usr/bin/env bash
# track1 front door. Creates .venv/ on first use (pinned deps from requirements*.txt,
# then the project itself, editable), then dispatches:
#   bash run.sh demo                   the main job on the embedded default: train, then evaluate
#   bash run.sh train [options]        train the supernet (default: CPU demo, embedded data)
#   bash run.sh evaluate [options]     score the official list, write submission/ JSON
#   bash run.sh search [options]       search the trained supernet under FLOPs/params bounds
#   bash run.sh export ARCH            one subnet as a standalone network file
#   bash run.sh train-subnet ARCH      train one arch alone (scratch or supernet weights)
#   bash run.sh bench-nb201 [options]  rank-consistency bench on NAS-Bench-201
#   bash run.sh test [pytest args]     run the test suite
#   bash run.sh setup                  only create / update the virtual environment
#   bash run.sh <command> ...          any other `python -m track1` command (info, ...)
# TRACK1_PYTHON=/path/to/python uses that interpreter as is (a cluster's or conda's
# PyTorch with CUDA) and skips the virtual environment.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# every default output folder (supernet_ckpt/, submission/, runs/) hangs off the project
# home (track1/infra/paths.py): the repository, whatever folder run.sh is called from
export TRACK1_HOME="${TRACK1_HOME:-$ROOT}"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
STAMP="$VENV/.track1-requirements"

ensure_venv() {
  local want
  if [[ -n "${TRACK1_PYTHON:-}" ]]; then
    # that interpreter does not have the project installed: it finds the package here
    PY="$TRACK1_PYTHON"
    export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
    return
  fi
  want="$(cat "$ROOT/requirements.txt" "$ROOT/requirements-dev.txt" "$ROOT/pyproject.toml" \
    | sha256sum | cut -d' ' -f1)"
  if [[ -x "$PY" && -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then
    return
  fi
  echo "[run.sh] setting up $VENV (first run, or requirements or pyproject.toml changed) ..." >&2
  if [[ ! -x "$PY" ]]; then
    "${PYTHON:-python3}" -m venv "$VENV"
  fi
  # torch first and alone, at its pin: on a CPU-only machine with a local CPU wheel this
  # takes that wheel and no CUDA packages; the rest then finds torch already satisfied.
  "$PY" -m pip install --quiet --disable-pip-version-check "$(grep -E '^torch==' "$ROOT/requirements.txt")" 2> >(grep -v "is ignored" >&2)
  "$PY" -m pip install --quiet --disable-pip-version-check -r "$ROOT/requirements.txt" -r "$ROOT/requirements-dev.txt" 2> >(grep -v "is ignored" >&2)
  # the project itself, editable and without resolving its dependencies again (they are the
  # pins just installed): `import track1` from any folder, and the `track1` console script.
  # Its build backend, setuptools, comes with torch; installed here only if it is missing.
  "$PY" -c "import setuptools" 2>/dev/null \
    || "$PY" -m pip install --quiet --disable-pip-version-check "setuptools>=64" 2> >(grep -v "is ignored" >&2)
  "$PY" -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e "$ROOT" 2> >(grep -v "is ignored" >&2)
  (cd / && "$PY" -c "import track1, torchvision, timm") # fail here, not later, if imports break
  echo "$want" > "$STAMP"
  echo "[run.sh] environment ready" >&2
}

cmd="${1:-help}"
[[ $# -gt 0 ]] && shift
case "$cmd" in
  help|-h|--help)
    sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
    ;;
  setup)
    ensure_venv
    ;;
  demo)
    ensure_venv
    "$PY" -m track1 train "$@"
    exec "$PY" -m track1 evaluate
    ;;
  test)
    ensure_venv
    cd "$ROOT"
    exec "$PY" -m pytest tests "$@"
    ;;
  *)
    ensure_venv
    # run from the caller's folder, so relative paths (--out, --data, files) mean what
    # the caller sees; every default location (supernet_ckpt/, submission/, runs/) is
    # anchored at the repository
    exec "$PY" -m track1 "$cmd" "$@"
    ;;
esac
