"""Per-client data for `flwrazure start --client-data OUT`: OUT/<i>/train.npz for clients i = 1..N.

Client i gets partition i-1 of the bundled digits' training part (disjoint, shuffled with a fixed seed): the same
split a SuperNode without data-path takes from its partition-id, so both ways train on the same examples.

    python -m sklearn_app.prepare OUT --clients N
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from sklearn_app import task


def _same(path: Path, x: np.ndarray, y: np.ndarray) -> bool:
    try:
        with np.load(path) as data:
            return np.array_equal(data["X"], x) and np.array_equal(data["y"], y)
    except (OSError, ValueError, KeyError):
        return False


def write(out: Path, clients: int) -> list[Path]:
    written = []
    for i in range(1, clients + 1):
        x, y = task.partition(i - 1, clients)
        (out / str(i)).mkdir(parents=True, exist_ok=True)
        path = out / str(i) / task.TRAIN_FILE
        if not _same(path, x, y):  # rewritten only when different: npz bytes carry the time they were written
            np.savez(path, X=x, y=y)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sklearn_app.prepare", description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="directory to write OUT/1, OUT/2, ... into")
    parser.add_argument("--clients", type=int, required=True, help="number of client VMs (1-100)")
    args = parser.parse_args(argv)
    if not 1 <= args.clients <= 100:
        parser.error(f"--clients {args.clients}: give 1 to 100")
    for path in write(args.out, args.clients):
        with np.load(path) as data:
            print(f"{path}: {len(data['y'])} examples")
    print(f"next: flwrazure start --client-data {args.out} ...", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
