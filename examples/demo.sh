#!/usr/bin/env bash
# The main job on the local cloud: VMs booting a bare cloud image (with Azure's first-boot provisioning and apt
# activity, realistic timings), ports, Flower (TLS + SuperNode authentication), each client's own data copied to
# it, a real `flwr run` of examples/sklearn-app (scikit-learn, installed by Flower at run time on the SuperLink and
# every SuperNode: no --extra-pip), teardown. Needs root (sandbox VMs; `make demo` runs `flwrazure local prepare`).
# Packages come through the local cloud's pull-through mirror (cached in $FLWRAZURE_HOME/local/wheelhouse) and the
# flwr CLI's wheels are kept in .demo/wheels: after the first run it works offline.
# Exits non-zero, with one line saying why, when the federated run fails or does not finish, or when the model's
# accuracy did not improve from the first round to the last.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=$(command -v "${PY:-python3}")  # absolute: the flwr venv goes first on PATH below
FZ="$PY -m flwrazure"
FLWR_VERSION=1.42.0
CONNECTION=demo
APP=examples/sklearn-app
CLIENTS=2
export FLWR_TELEMETRY_ENABLED=0 FLWR_DISABLE_UPDATE_CHECK=1
export FLWR_HOME=${FLWR_HOME:-$PWD/.demo/flwr}          # keeps your own ~/.flwr untouched
LOG=.demo/flwr-run.log

fail() { echo "demo failed: $*" >&2; exit 1; }

started_cloud=no
cleanup() {
  $FZ teardown --cluster demo --yes --purge >/dev/null 2>&1 || true
  if [ "$started_cloud" = yes ]; then $FZ local down || true; fi  # a local cloud that was already up stays up
}
trap cleanup EXIT

# the operator's flwr CLI must share the cluster's major.minor: a venv of its own, first on PATH, which also has
# scikit-learn to cut the clients' data from its bundled data set. Its wheels are downloaded once (this machine's
# pip configuration) into .demo/wheels; the venv is made without ensurepip (python3-venv need not be installed)
# and filled from there, offline.
mkdir -p .demo
if [ ! -x .demo/venv/bin/flwr ] || ! .demo/venv/bin/python -c "import sklearn" 2>/dev/null; then
  if ! compgen -G ".demo/wheels/flwr-$FLWR_VERSION-*.whl" >/dev/null || ! compgen -G ".demo/wheels/scikit_learn-*.whl" >/dev/null; then
    $PY -m pip download -q -d .demo/wheels "flwr==$FLWR_VERSION" numpy scikit-learn \
      || fail "could not download flwr $FLWR_VERSION and scikit-learn for this machine (pip download above); check this machine's pip index"
  fi
  rm -rf .demo/venv
  $PY -m venv --without-pip .demo/venv
  $PY -m pip --python .demo/venv/bin/python install -q --no-index --find-links .demo/wheels \
    "flwr==$FLWR_VERSION" numpy scikit-learn || fail "installing the flwr CLI from .demo/wheels failed (remove .demo/wheels to download again)"
fi
export PATH="$PWD/.demo/venv/bin:$PATH"

# each client's own data: .demo/data/<i>/train.npz, a disjoint part of scikit-learn's bundled digits
rm -rf .demo/data
(cd "$APP" && python -m sklearn_app.prepare "$OLDPWD/.demo/data" --clients "$CLIENTS") \
  || fail "preparing the clients' data in .demo/data failed (its message is above)"

up=$($FZ local up) || fail "flwrazure local up failed (its message is above)"
echo "$up"
case $up in *"Local cloud started"*) started_cloud=yes;; esac
$FZ up --cloud local --cluster demo --clients "$CLIENTS" --flwr-version "$FLWR_VERSION" --client-data .demo/data \
  || fail "flwrazure up failed (its message is above)"

# the run's log streams live (filtered) and is kept whole in $LOG; flwr's exit status and the run's final status
# both decide (flwr run --stream exits 0 when the logs end, even for a run that failed)
set +e
flwr run "$APP" "$CONNECTION" --stream 2>&1 | tee "$LOG" \
  | grep --line-buffered -E "Successfully started run|flwrazure-example|Run finished|ERROR"
codes=("${PIPESTATUS[@]}")
set -e
[ "${codes[0]}" -eq 0 ] || fail "flwr run exited with ${codes[0]}: see $LOG"
run_id=$(sed -n 's/.*Successfully started run \([0-9][0-9]*\).*/\1/p' "$LOG" | head -n 1)
[ -n "$run_id" ] || fail "flwr run did not start a run: see $LOG"

status=""
for _ in $(seq 30); do  # the SuperLink marks the run finished right after its last log line
  status=$(flwr ls "$CONNECTION" --run-id "$run_id" --format json 2>/dev/null | $PY -c '
import json, sys
text = sys.stdin.read()
try:
    runs = json.loads(text[text.index("{"):]).get("runs") or [{}]
except ValueError:
    runs = [{}]
print(runs[0].get("status", ""))') || status=""
  case $status in finished:*) break;; esac
  sleep 2
done
[ "$status" = "finished:completed" ] || fail "run $run_id ended as '${status:-unknown}', not finished:completed: see $LOG"
# the model must have learnt: accuracy after the last round above that after the first
read -r first last < <(sed -n 's/.*flwrazure-example: round [0-9][0-9]* accuracy \([0-9.]*\).*/\1/p' "$LOG" \
  | $PY -c 'import sys; a = sys.stdin.read().split(); print(a[0] if a else "-", a[-1] if a else "-")')
[ "$first" != "-" ] || fail "run $run_id printed no per-round accuracy: see $LOG"
$PY -c "import sys; sys.exit(0 if float('$last') > float('$first') else 1)" \
  || fail "accuracy did not improve: $first after the first round, $last after the last: see $LOG"
echo "Federated run $run_id finished:completed; accuracy $first after round 1, $last after the last round."
$FZ status --cluster demo
