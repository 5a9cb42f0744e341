#!/usr/bin/env bash
# The main job on the local cloud, offline after the first download: VMs, ports, Flower (TLS + SuperNode
# authentication), a real `flwr run` of examples/numpy-app, teardown. Needs root (sandbox VMs).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=$(command -v "${PY:-python3}")  # absolute: the flwr venv goes first on PATH below
FZ="$PY -m flwrazure"
FLWR_VERSION=1.42.0
export FLWR_TELEMETRY_ENABLED=0 FLWR_DISABLE_UPDATE_CHECK=1
export FLWR_HOME=${FLWR_HOME:-$PWD/.demo/flwr}          # keeps your own ~/.flwr untouched
WHEELS=${FLWRAZURE_HOME:-$HOME/.flwrazure}/local/wheelhouse

cleanup() { $FZ teardown --cluster demo --yes --purge >/dev/null 2>&1 || true; $FZ local down || true; }
trap cleanup EXIT

$FZ local up --prefetch "flwr==$FLWR_VERSION" --prefetch numpy --prefetch hatchling
# the flwr CLI must share the cluster's major.minor: a venv of its own, from the same wheels, first on PATH
if [ ! -x .demo/venv/bin/flwr ]; then
  $PY -m venv .demo/venv
  .demo/venv/bin/pip install -q --no-index --find-links "$WHEELS" "flwr==$FLWR_VERSION" numpy
fi
export PATH="$PWD/.demo/venv/bin:$PATH"
$FZ up --cloud local --cluster demo --clients 2 --flwr-version "$FLWR_VERSION" --extra-pip numpy
flwr run examples/numpy-app demo --stream 2>&1 | grep --line-buffered -E "flwrazure-example|Starting|Run finished|ERROR" || true
$FZ status --cluster demo
