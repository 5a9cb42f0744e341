"""Per-VM preparation: venv support, a venv with the cluster's flwr (and the app's extra packages), skipped when
a marker says exactly this is already installed."""

from __future__ import annotations

import json
import shlex

from flwrazure.plan.services import Layout, index_host
from flwrazure.remote.ssh import put_text, read, run, succeeds


def ensure_flwr(conn, layout: Layout, version: str, extra: list[str], index_url: str | None) -> bool:
    """Returns True when something was installed."""
    want = json.dumps({"flwr": version, "extra": sorted(extra), "index": index_url}, sort_keys=True) + "\n"
    marker = layout.path("installed.json")
    run(conn, f"mkdir -p {layout.base}")
    if read(conn, marker) == want and succeeds(conn, f"test -x {layout.venv}/bin/flower-superlink"):
        return False
    if not succeeds(conn, "python3 -m venv --help >/dev/null 2>&1"):
        run(conn, "sudo -n env DEBIAN_FRONTEND=noninteractive apt-get update -qq && "
                  "sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv")
    run(conn, f"test -x {layout.venv}/bin/pip || python3 -m venv {layout.venv}")
    index = ""
    if index_url:
        index = f"--index-url {shlex.quote(index_url)}"
        if index_url.startswith("http://"):
            index += f" --trusted-host {index_host(index_url)}"
    packages = " ".join(shlex.quote(p) for p in [f"flwr=={version}", *extra])
    run(conn, f"{layout.venv}/bin/pip install --disable-pip-version-check --no-compile -q {index} {packages}")
    put_text(conn, want, marker, "644")
    return True
