"""The Azure CLI from the package registry, in a venv of its own, installed once and cached (as the flwr wheels are)."""

from __future__ import annotations

import json
import os
import socketserver
import subprocess
import sys
import threading
from pathlib import Path

VERSION = "2.91.0"
CACHE = Path(os.environ.get("FLWRAZURE_TEST_CACHE", Path.home() / ".cache" / "flwrazure-tests"))


def install() -> Path:
    """The venv's bin folder (holding `az`), installing azure-cli==VERSION the first time (~1-2 min)."""
    base = CACHE / f"azure-cli-{VERSION}"
    venv = base / "venv"
    if not (base / "ready").exists():
        base.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True, timeout=300)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check",
                        f"azure-cli=={VERSION}"], check=True, timeout=1800)
        (base / "ready").write_text("ok\n")
    return venv / "bin"


def seed_version_check(bin_dir: Path, config_dir: Path) -> None:
    """Tell az its own release is known, so its first run in this folder does not look for a newer one online."""
    code = ("import json, azure.cli.core as c, importlib.metadata as m; "
            "print(json.dumps([c.__version__, m.version('azure-cli-telemetry')]))")
    core, telemetry = json.loads(subprocess.run([str(bin_dir / "python"), "-c", code], capture_output=True,
                                                text=True, check=True).stdout)
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "versionCheck.json").write_text(json.dumps({
        "versions": {"azure-cli": {"local": core}, "core": {"local": core}, "telemetry": {"local": telemetry}},
        "update_time": "2099-01-01 00:00:00.000000"}))


class Tripwire:
    """An HTTP(S) proxy that refuses everything and remembers what was asked of it: with HTTPS_PROXY/HTTP_PROXY
    pointing here and NO_PROXY naming loopback, any request meant for another host lands in `seen`."""

    def __init__(self) -> None:
        seen: list[str] = []

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                seen.append(self.rfile.readline(4096).decode(errors="replace").strip())
                self.wfile.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

        self.seen = seen
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def env(self) -> dict[str, str]:
        url = f"http://127.0.0.1:{self.server.server_address[1]}"
        return {"HTTPS_PROXY": url, "HTTP_PROXY": url, "https_proxy": url, "http_proxy": url,
                "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
