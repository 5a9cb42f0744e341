"""A package index the sandbox VMs can reach (they have no internet): wheels downloaded once on this machine
(`flwrazure local up --prefetch 'flwr==1.42.0'`) and served as a PEP 503 simple index on the public gateway."""

from __future__ import annotations

import hashlib
import html
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

PORT = 47480


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def project_of(filename: str) -> str:
    return normalize(filename.split("-")[0])


def prefetch(specs: list[str], wheelhouse: Path) -> None:
    """Download wheels (and their dependencies) for this machine's Python, as the VMs run the same OS image."""
    wheelhouse.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([sys.executable, "-m", "pip", "download", "--only-binary=:all:", "--quiet",
                           "-d", str(wheelhouse), *specs], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"pip download {' '.join(specs)} failed: {proc.stderr.strip().splitlines()[-1:]}")


_DIGESTS: dict[tuple[str, int, int], str] = {}


def digest(path: Path) -> str:
    """sha256 of a wheel, computed once per (name, size, mtime): every VM asks for every project page."""
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _DIGESTS:
        h = hashlib.sha256()
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _DIGESTS[key] = h.hexdigest()
    return _DIGESTS[key]


class _Index(BaseHTTPRequestHandler):
    def do_HEAD(self) -> None:  # uv asks for a file's size before downloading it
        self._head_only = True
        try:
            self.do_GET()
        finally:
            self._head_only = False

    def do_GET(self) -> None:
        house: Path = self.server.wheelhouse
        path = unquote(self.path.split("?")[0])
        files = sorted(p for p in house.glob("*") if p.suffix in (".whl", ".gz", ".zip"))
        if path in ("/simple", "/simple/"):
            names = sorted({project_of(p.name) for p in files})
            return self._page("".join(f'<a href="/simple/{n}/">{n}</a>\n' for n in names))
        m = re.match(r"^/simple/([^/]+)/?$", path)
        if m:
            wanted = normalize(m.group(1))
            links = []
            for p in files:
                if project_of(p.name) == wanted:
                    links.append(f'<a href="/files/{html.escape(p.name)}#sha256={digest(p)}">'
                                 f'{html.escape(p.name)}</a>')
            if not links:
                return self.send_error(404)
            return self._page("\n".join(links))
        m = re.match(r"^/files/([^/]+)$", path)
        if m and (house / m.group(1)).is_file():
            return self._file(house / m.group(1))
        return self.send_error(404)

    def _file(self, path: Path) -> None:
        size = path.stat().st_size
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        if not getattr(self, "_head_only", False):
            self.wfile.flush()
            with path.open("rb") as f:
                self.connection.sendfile(f)  # zero-copy: many VMs download tens of MiB each at once

    def _page(self, body: str) -> None:
        self._send(f"<!DOCTYPE html><html><body>\n{body}\n</body></html>".encode(), "text/html")

    def _send(self, data: bytes, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if not getattr(self, "_head_only", False):
            self.wfile.write(data)

    def log_message(self, format, *args):
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the default backlog of 5 drops connections when many VMs install at once


class Mirror:
    def __init__(self, wheelhouse: Path, host: str, port: int = PORT):
        wheelhouse.mkdir(parents=True, exist_ok=True)
        self.httpd = _Server((host, port), _Index)
        self.httpd.wheelhouse = wheelhouse
        self.url = f"http://{host}:{port}/simple/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True, name="localcloud-mirror")
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
