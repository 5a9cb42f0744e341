"""The package mirror of the local cloud's region, on the public gateway (the VMs have no internet, as VMs in a
locked-down VNet reach only their region's mirrors):

- `/simple/`: a PEP 503 index that is a pull-through cache. A project page lists what this machine's own pip
  configuration finds upstream (its index-url and extra-index-urls, certificate and proxy settings), with links back
  to the mirror; a file is downloaded once on first request, checked against its sha256, cached and served. The VM's
  pip picks the wheels for its own Python and platform. When upstream cannot be reached the cached files are served,
  so everything installed once installs again offline. `local up --prefetch SPEC` fills the cache ahead of time.
- `/debian/`: a flat apt repository with the packages an image may need to add (images.py builds it)."""

from __future__ import annotations

import ast
import hashlib
import html
import json
import os
import re
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

PORT = 47480
ARCHIVES = (".whl", ".tar.gz", ".zip")
PAGE_TTL = 600.0  # seconds an upstream project page is reused
FAILURE_TTL = 30.0  # seconds an unreachable upstream is not asked again


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def project_of(filename: str) -> str:
    if filename.endswith(".whl"):
        return normalize(filename.split("-")[0])
    stem = re.sub(r"\.(tar\.gz|zip)$", "", filename)
    return normalize(stem.rsplit("-", 1)[0])


def platform_tags(glibc: tuple[int, int] = (2, 36), arch: str = "x86_64") -> list[str]:
    """Every manylinux tag a glibc of this version runs, newest first (pip does not expand `--platform` itself)."""
    major, minor = glibc
    tags = [f"manylinux_{major}_{m}_{arch}" for m in range(minor, 4, -1)]
    return tags + [f"manylinux2014_{arch}", f"manylinux2010_{arch}", f"manylinux1_{arch}", f"linux_{arch}"]


def target_args(python: str | None) -> list[str]:
    """pip download arguments for a VM image's Python (None: this machine's Python, the host image)."""
    if not python:
        return []
    nodot = python.replace(".", "")
    args = ["--python-version", python, "--implementation", "cp", "--abi", f"cp{nodot}", "--abi", "abi3",
            "--abi", "none"]
    for tag in platform_tags():
        args += ["--platform", tag]
    return args


def prefetch(specs: list[str], wheelhouse: Path, python: str | None = None) -> None:
    """Download wheels (and their dependencies) for the VMs' Python and platform into the cache."""
    wheelhouse.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([sys.executable, "-m", "pip", "download", "--only-binary=:all:", "--quiet",
                           "-d", str(wheelhouse), *target_args(python), *specs], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"pip download {' '.join(specs)} failed: {proc.stderr.strip().splitlines()[-1:]}")


# -- upstream: what this machine's pip is configured to use --------------------------------------------------
# `pip config list` prints its settings sorted by key, not in the order pip applies them: for a command, pip takes
# [global], then the command's own section, then the environment (PIP_*, shown as `:env:`), each overriding the last
_SECTION_RANK = {"global": 0, "download": 1, "install": 1, ":env:": 2}


def _config_value(raw: str) -> str:
    """A value as `pip config list` prints it (Python's repr of the string: multi-line values show as '\\n…')."""
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return raw.strip("'\"")
    return value if isinstance(value, str) else raw


def pip_settings(config_list: str, default_index: str) -> dict:
    """Indexes, certificate and proxy from `pip config list` output, with pip's precedence (global < the command's
    section < environment; within one rank the later line wins) (pure)."""
    found: dict[str, tuple[int, str]] = {}
    for line in config_list.splitlines():
        key, sep, raw = line.partition("=")
        if not sep:
            continue
        section, _, name = key.strip().rpartition(".")
        rank = _SECTION_RANK.get(section)
        if rank is None or name not in ("index-url", "extra-index-url", "cert", "proxy"):
            continue
        if rank >= found.get(name, (-1, ""))[0]:
            found[name] = (rank, _config_value(raw.strip()))
    value = {name: v for name, (_, v) in found.items()}
    return {"indexes": [value.get("index-url") or default_index, *value.get("extra-index-url", "").split()],
            "cert": value.get("cert") or None, "proxy": value.get("proxy") or None}


def machine_pip_settings() -> dict:
    """This machine's pip configuration; FLWRAZURE_MIRROR_UPSTREAM (space-separated URLs, or empty) overrides the
    indexes, e.g. to test that the cache alone serves a second cluster."""
    override = os.environ.get("FLWRAZURE_MIRROR_UPSTREAM")
    listed = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True,
                            stdin=subprocess.DEVNULL).stdout
    try:
        from pip._internal.models.index import PyPI

        default = PyPI.simple_url
    except ImportError:
        default = ""
    settings = pip_settings(listed, default)
    if override is not None:
        settings["indexes"] = override.split()
    settings["cert"] = os.environ.get("PIP_CERT") or settings["cert"]
    settings["indexes"] = [i for i in settings["indexes"] if i]
    return settings


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.found: list[tuple[str, dict]] = []
        self._attrs: dict | None = None
        self._text = ""

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self._attrs, self._text = dict(attrs), ""

    def handle_data(self, data):
        if self._attrs is not None:
            self._text += data

    def handle_endtag(self, tag):
        if tag == "a" and self._attrs is not None:
            self.found.append((self._text.strip(), self._attrs))
            self._attrs = None


def _schemes(base_url: str) -> tuple[str, ...]:
    """Where a page's links may point: a local (file://) index to its files, a web index to the web only; a web
    page linking file:///etc/shadow must not make the mirror read this machine's files."""
    return ("file",) if urllib.parse.urlsplit(base_url).scheme == "file" else ("http", "https")


def parse_page(page: str, base_url: str) -> dict[str, dict]:
    """A PEP 503 project page -> {filename: {"url", "sha256", "requires_python", "yanked"}} (pure). Links to
    another kind of place than the page's own (see _schemes) are dropped."""
    parser = _Links()
    parser.feed(page)
    files: dict[str, dict] = {}
    allowed = _schemes(base_url)
    for text, attrs in parser.found:
        href = attrs.get("href") or ""
        url, _, fragment = urllib.parse.urljoin(base_url, href).partition("#")
        if urllib.parse.urlsplit(url).scheme not in allowed:
            continue
        name = text or unquote(url.rsplit("/", 1)[-1])
        if not name.endswith(ARCHIVES) or name in files:
            continue
        sha = fragment.split("=", 1)[1] if fragment.startswith("sha256=") else None
        files[name] = {"url": url, "sha256": sha, "requires_python": attrs.get("data-requires-python"),
                       "yanked": (attrs["data-yanked"] or "") if "data-yanked" in attrs else None}
    return files


def render_page(files: dict[str, dict]) -> str:
    """The mirror's own page: every file linked through the mirror, requires-python kept (pure)."""
    rows = []
    for name in sorted(files):
        meta = files[name]
        attrs = ""
        if meta.get("requires_python"):
            attrs += f' data-requires-python="{html.escape(meta["requires_python"])}"'
        if meta.get("yanked") is not None:
            attrs += f' data-yanked="{html.escape(meta["yanked"])}"'
        frag = f"#sha256={meta['sha256']}" if meta.get("sha256") else ""
        rows.append(f'<a href="/files/{html.escape(name)}{frag}"{attrs}>{html.escape(name)}</a>')
    return "\n".join(rows)


class Upstream:
    """Project pages and files from the indexes this machine's pip uses."""

    def __init__(self, settings: dict):
        self.indexes = settings["indexes"]
        self.ctx = ssl.create_default_context(cafile=settings.get("cert") or None)
        handlers: list = [urllib.request.HTTPSHandler(context=self.ctx)]
        if settings.get("proxy"):
            proxy = settings["proxy"]
            handlers.append(urllib.request.ProxyHandler({"http": proxy, "https": proxy}))
        self.opener = urllib.request.build_opener(*handlers)
        self.pages: dict[str, tuple[float, dict]] = {}
        self.failed_until = 0.0
        self.lock = threading.Lock()

    def page(self, project: str) -> dict[str, dict] | None:
        """The files upstream offers for a project; None when no index could be reached."""
        now = time.monotonic()
        with self.lock:
            cached = self.pages.get(project)
            if cached and now - cached[0] < PAGE_TTL:
                return cached[1]
            if now < self.failed_until:
                return None
        files: dict[str, dict] = {}
        reached = False
        for index in self.indexes:
            url = f"{index.rstrip('/')}/{project}/"
            try:
                text = self._read_page(url)
            except FileNotFoundError:
                reached = True
                continue
            except OSError:
                continue
            reached = True
            for name, meta in parse_page(text, url).items():
                files.setdefault(name, meta)
        with self.lock:
            if reached:
                self.pages[project] = (now, files)
            else:
                self.failed_until = now + FAILURE_TTL
        return files if reached else None

    def _read_page(self, url: str) -> str:
        if url.startswith("file://"):
            path = Path(urllib.parse.urlparse(url).path)
            page = path / "index.html"
            if not path.parent.is_dir():
                raise OSError(f"no index at {path.parent}")
            if not page.is_file():
                raise FileNotFoundError(url)
            return page.read_text()
        request = urllib.request.Request(url, headers={"Accept": "text/html", "User-Agent": "flwrazure-mirror"})
        try:
            with self.opener.open(request, timeout=20) as resp:
                return resp.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                raise FileNotFoundError(url) from None
            raise OSError(str(exc)) from None

    def download(self, url: str, dest: Path, sha256: str | None) -> None:
        if url.startswith("file://") and not any(i.startswith("file://") for i in self.indexes):
            raise OSError(f"{url}: not a file of a local index")  # parse_page drops such links already
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".part-")
        h = hashlib.sha256()
        try:
            with os.fdopen(fd, "wb") as out:
                if url.startswith("file://"):
                    source = open(urllib.parse.urlparse(url).path, "rb")
                else:
                    source = self.opener.open(urllib.request.Request(url, headers={"User-Agent": "flwrazure-mirror"}),
                                              timeout=60)
                with source:
                    for block in iter(lambda: source.read(1 << 20), b""):
                        h.update(block)
                        out.write(block)
            if sha256 and h.hexdigest() != sha256:
                raise OSError(f"{dest.name}: sha256 mismatch")
            os.replace(tmp, dest)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)


_DIGESTS: dict[tuple[str, int, int], str] = {}


def digest(path: Path) -> str:
    """sha256 of a cached file, computed once per (name, size, mtime): every VM asks for every project page."""
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
        mirror: Mirror = self.server.mirror
        path = unquote(self.path.split("?")[0])
        if path.startswith("/debian/"):
            name = path[len("/debian/"):].lstrip("./")
            target = (mirror.apt / name) if mirror.apt and "/" not in name else None
            return self._file(target) if target and target.is_file() else self.send_error(404)
        if path in ("/simple", "/simple/"):
            names = sorted({project_of(p.name) for p in mirror.cached()})
            return self._page("".join(f'<a href="/simple/{n}/">{n}</a>\n' for n in names))
        m = re.fullmatch(r"/simple/([^/]+)/?", path)
        if m:
            files = mirror.files_of(normalize(m.group(1)))
            return self._page(render_page(files)) if files else self.send_error(404)
        m = re.fullmatch(r"/files/([^/]+)", path)
        if m:
            local = mirror.fetch(m.group(1))
            return self._file(local) if local else self.send_error(404)
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
        data = f"<!DOCTYPE html><html><body>\n{body}\n</body></html>".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
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
    def __init__(self, wheelhouse: Path, host: str, port: int = PORT, apt: Path | None = None,
                 upstream: Upstream | None = None):
        wheelhouse.mkdir(parents=True, exist_ok=True)
        self.wheelhouse = wheelhouse
        self.apt = apt
        self.upstream = upstream if upstream is not None else Upstream(machine_pip_settings())
        self.meta_file = wheelhouse / ".meta.json"
        try:
            self.meta: dict[str, dict] = json.loads(self.meta_file.read_text())
        except (OSError, ValueError):
            self.meta = {}
        self.sources: dict[str, dict] = {}  # filename -> upstream url/sha256, for files not cached yet
        self.lock = threading.Lock()
        self.file_locks: dict[str, threading.Lock] = {}
        self.httpd = _Server((host, port), _Index)
        self.httpd.mirror = self
        self.port = self.httpd.server_address[1]  # port 0: the one the system picked
        self.base = f"http://{host}:{self.port}"
        self.url = f"{self.base}/simple/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True, name="localcloud-mirror")
        self.thread.start()

    def cached(self) -> list[Path]:
        return sorted(p for p in self.wheelhouse.iterdir() if p.is_file() and p.name.endswith(ARCHIVES))

    def files_of(self, project: str) -> dict[str, dict]:
        """What the project page lists: upstream's files (when reachable) and every cached one."""
        upstream = self.upstream.page(project) or {}
        files = {}
        with self.lock:
            for name, meta in upstream.items():
                self.sources[name] = meta
                files[name] = {k: meta.get(k) for k in ("sha256", "requires_python", "yanked")}
            changed = False
            for name, meta in upstream.items():
                if meta.get("requires_python") and self.meta.get(name, {}).get("requires_python") != \
                        meta["requires_python"] and (self.wheelhouse / name).exists():
                    self.meta[name] = {"requires_python": meta["requires_python"]}
                    changed = True
        for path in self.cached():
            if project_of(path.name) == project and path.name not in files:
                files[path.name] = {"sha256": digest(path),
                                    "requires_python": self.meta.get(path.name, {}).get("requires_python")}
        if changed:
            self._save_meta()
        return files

    def fetch(self, name: str) -> Path | None:
        """A cached file, downloaded from upstream first if needed (once, however many VMs ask at once)."""
        if "/" in name or name.startswith("."):
            return None
        local = self.wheelhouse / name
        if local.is_file():
            return local
        with self.lock:
            source = self.sources.get(name)
            file_lock = self.file_locks.setdefault(name, threading.Lock())
        if source is None:
            return None
        with file_lock:
            if not local.is_file():
                try:
                    self.upstream.download(source["url"], local, source.get("sha256"))
                except OSError:
                    return None
                if source.get("requires_python"):
                    with self.lock:
                        self.meta[name] = {"requires_python": source["requires_python"]}
                    self._save_meta()
        return local

    def _save_meta(self) -> None:
        # under the lock, file and all: requests served at once (VMs asking for pages together) each save, and
        # saves sharing the temporary file failed each other's rename (the VM's request then got no answer)
        with self.lock:
            tmp = self.meta_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.meta))
            os.replace(tmp, self.meta_file)

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
