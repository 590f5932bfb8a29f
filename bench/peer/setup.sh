#!/usr/bin/env bash
# Set up the throw-away peer venv for the OpenELM 0.9.2 Sodarace benchmark.
#
#   bench/peer/setup.sh                 # create/verify bench/.peer/venv (idempotent)
#   bench/peer/setup.sh --print-python  # same, then print the venv's python path
#                                       # on stdout (all other output is stderr)
#   bench/peer/setup.sh --force         # delete the venv and rebuild it
#
# The venv lives in bench/.peer/venv (git-ignored). OpenELM is installed with
# --no-deps (its full dependency set is torch/transformers/hydra/...); the
# Sodarace simulator needs only Box2D, numpy and pygame. Nothing of OpenELM is
# copied into the repository.
#
# Box2D: 2.3.10 ships a cp311 manylinux x86_64 wheel (no swig needed); PyPI
# has no 2.3.10 sdist, so it cannot be built from source. Where no 2.3.10
# wheel fits, box2d-py==2.3.8 (same API, module `Box2D`) is built from its
# sdist instead, loudly, and recorded in the stamp; that needs swig (installed
# here with `apt-get update && apt-get install -y swig` when running as root
# or with passwordless sudo), g++ and the Python headers.
#
# Environment overrides: PEER_BASE_PYTHON (default python3.11),
# PEER_BOX2D_FROM_SOURCE=1 (skip the 2.3.10 wheel; tests the fallback path).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PEER_DIR="$ROOT/bench/.peer"
VENV="$PEER_DIR/venv"
PY="$VENV/bin/python"
STAMP="$VENV/.openelm-peer-stamp"
BASE_PYTHON="${PEER_BASE_PYTHON:-python3.11}"

OPENELM_SPEC="openelm==0.9.2"
BOX2D_SPEC="Box2D==2.3.10"
BOX2D_FALLBACK_SPEC="box2d-py==2.3.8"
# Versions the benchmark was verified with (pinned for reproducible numbers).
DEPS=("numpy==2.4.6" "pygame==2.6.1" "urllib3==2.8.0")
# Bump when the recipe changes so existing venvs are rebuilt.
RECIPE="v1 $OPENELM_SPEC ${DEPS[*]} box2d:$BOX2D_SPEC|$BOX2D_FALLBACK_SPEC"

PRINT_PYTHON=0
FORCE=0
for arg in "$@"; do
  case "$arg" in
    --print-python) PRINT_PYTHON=1 ;;
    --force) FORCE=1 ;;
    -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "setup.sh: unknown argument: $arg" >&2; exit 2 ;;
  esac
done

log() { echo "[peer-setup] $*" >&2; }
die() { echo "[peer-setup] ERROR: $*" >&2; exit 1; }

stamp_ok() {
  [[ -f "$STAMP" && -x "$PY" ]] || return 1
  [[ "$(head -n1 "$STAMP")" == "$RECIPE" ]] || return 1
  "$PY" -c 'import Box2D, numpy' >/dev/null 2>&1
}

pip_() { "$PY" -m pip --disable-pip-version-check --no-input -q "$@" 1>&2; }

as_root() {
  if [[ "$(id -u)" == 0 ]]; then "$@"
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo -n "$@"
  else return 1
  fi
}

ensure_swig() {
  command -v swig >/dev/null 2>&1 && return 0
  command -v apt-get >/dev/null 2>&1 || { log "swig missing and no apt-get"; return 1; }
  log "installing swig (needed to build Box2D from source): apt-get update && apt-get install -y swig"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update 1>&2 || return 1
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y swig 1>&2 || return 1
  command -v swig >/dev/null 2>&1
}

ensure_build_tools() {
  local inc
  inc="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
  if ! command -v g++ >/dev/null 2>&1; then
    log "no C++ compiler; trying apt-get install -y g++"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y g++ 1>&2 || return 1
  fi
  [[ -f "$inc/Python.h" ]] || { log "Python headers missing ($inc/Python.h)"; return 1; }
}

install_box2d() {
  # 1) Box2D 2.3.10: PyPI has binary wheels only (no sdist of 2.3.10 exists),
  #    including cp311 manylinux x86_64.
  if [[ "${PEER_BOX2D_FROM_SOURCE:-0}" != 1 ]]; then
    if pip_ install --only-binary=:all: "$BOX2D_SPEC"; then
      BOX2D_INSTALLED="$BOX2D_SPEC (wheel)"; return 0
    fi
  fi
  # 2) Fallback: box2d-py 2.3.8 (same API, module Box2D). It has no cp311
  #    wheel, so pip builds it from its sdist: needs swig, g++ and the
  #    Python headers (about a minute).
  log "WARNING: no binary wheel of $BOX2D_SPEC for this interpreter/platform" \
      "(and PyPI has no 2.3.10 sdist); FALLING BACK to $BOX2D_FALLBACK_SPEC"
  if pip_ install --only-binary=:all: "$BOX2D_FALLBACK_SPEC" 2>/dev/null; then
    BOX2D_INSTALLED="$BOX2D_FALLBACK_SPEC wheel (FALLBACK, not $BOX2D_SPEC)"; return 0
  fi
  ensure_swig || { log "cannot get swig (apt-get install -y swig as root)"; return 1; }
  ensure_build_tools || return 1
  log "building $BOX2D_FALLBACK_SPEC from source"
  if pip_ install --no-binary=:all: "$BOX2D_FALLBACK_SPEC"; then
    BOX2D_INSTALLED="$BOX2D_FALLBACK_SPEC built from source (FALLBACK, not $BOX2D_SPEC)"
    return 0
  fi
  return 1
}

setup() {
  if [[ "$FORCE" == 0 ]] && stamp_ok; then
    return 0
  fi
  command -v "$BASE_PYTHON" >/dev/null 2>&1 \
    || die "$BASE_PYTHON not found (OpenELM's simulator is run on Python 3.11; set PEER_BASE_PYTHON)"
  "$BASE_PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
    || die "$BASE_PYTHON is not Python 3.11"
  local t0=$SECONDS
  if [[ -e "$VENV" ]]; then
    log "removing incomplete/outdated venv $VENV"
    [[ "$VENV" == */bench/.peer/venv ]] || die "refusing to delete unexpected path $VENV"
    rm -rf -- "$VENV"
  fi
  mkdir -p "$PEER_DIR"
  log "creating venv $VENV with $BASE_PYTHON"
  "$BASE_PYTHON" -m venv "$VENV" 1>&2 \
    || die "python -m venv failed (on Debian: apt-get install -y python3.11-venv)"
  log "installing $OPENELM_SPEC --no-deps"
  pip_ install --no-deps "$OPENELM_SPEC" || die "pip install --no-deps $OPENELM_SPEC failed"
  log "installing ${DEPS[*]}"
  pip_ install "${DEPS[@]}" || die "pip install ${DEPS[*]} failed"
  BOX2D_INSTALLED=""
  install_box2d || die "could not install $BOX2D_SPEC nor $BOX2D_FALLBACK_SPEC (see pip output above)"
  if [[ "$BOX2D_INSTALLED" == *FALLBACK* ]]; then log "WARNING: using $BOX2D_INSTALLED"; fi
  log "smoke test: openelm_peer.py --check"
  "$PY" "$HERE/openelm_peer.py" --check 1>&2 \
    || die "smoke test failed: OpenELM's simulator cannot be imported/run in $VENV"
  {
    echo "$RECIPE"
    echo "box2d: $BOX2D_INSTALLED"
    echo "python: $("$PY" -c 'import sys; print(sys.version.split()[0])')"
    echo "created: $(date -u +%Y-%m-%dT%H:%M:%SZ) in $((SECONDS - t0))s"
  } >"$STAMP"
  log "done in $((SECONDS - t0))s ($BOX2D_INSTALLED)"
}

mkdir -p "$PEER_DIR"
if command -v flock >/dev/null 2>&1; then
  exec 9>"$PEER_DIR/.setup.lock"
  flock 9
fi
setup
if [[ "$PRINT_PYTHON" == 1 ]]; then
  echo "$PY"
fi
