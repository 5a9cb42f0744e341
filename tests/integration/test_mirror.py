"""The local cloud's pull-through wheel mirror on loopback, against a fake upstream of this test (a file:// index
holding a real wheel built here, or a tiny HTTP server): project pages list upstream's files through the mirror
with their sha256 and requires-python, a file is downloaded once and cached, pip installs through it, the cache is
served when upstream is gone (requires-python kept across a restart), a file whose hash does not match is refused,
and an unreachable upstream is not asked again for FAILURE_TTL seconds. Host-free: nothing leaves 127.0.0.1."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from flwrazure.localcloud import mirror as mirror_mod
from flwrazure.localcloud.mirror import Mirror, Upstream

WHEEL = "tinyproj-1.0-py3-none-any.whl"
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback only, whatever the environment


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def build_wheel(folder: Path, name: str = "tinyproj", version: str = "1.0") -> Path:
    """A minimal valid pure-Python wheel (PEP 427): a module, METADATA, WHEEL and RECORD with their hashes."""
    info = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": f'__version__ = "{version}"\n'.encode(),
        f"{info}/METADATA": (f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
                             "Requires-Python: >=3.8\nSummary: a wheel of the mirror test\n").encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: flwrazure-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(f"{path},{_record_hash(data)},{len(data)}\n" for path, data in files.items())
    files[f"{info}/RECORD"] = (record + f"{info}/RECORD,,\n").encode()
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as z:
        for path, data in files.items():
            z.writestr(path, data)
    return wheel


@pytest.fixture
def upstream(tmp_path):
    """A file:// PEP 503 index: index/tinyproj/index.html linking ../../files/<wheel> with its sha256."""
    files = tmp_path / "upstream" / "files"
    files.mkdir(parents=True)
    wheel = build_wheel(files)
    sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
    project = tmp_path / "upstream" / "index" / "tinyproj"
    project.mkdir(parents=True)
    (project / "index.html").write_text(
        f'<!DOCTYPE html><html><body>\n<a href="../../files/{WHEEL}#sha256={sha}" '
        f'data-requires-python="&gt;=3.8">{WHEEL}</a>\n</body></html>\n')
    return {"index": f"file://{tmp_path / 'upstream' / 'index'}", "wheel": wheel, "sha256": sha,
            "page": project / "index.html"}


def _upstream(*indexes: str) -> Upstream:
    return Upstream({"indexes": list(indexes), "cert": None, "proxy": None})


@pytest.fixture
def mirrors():
    started: list[Mirror] = []

    def start(wheelhouse: Path, upstream: Upstream) -> Mirror:
        m = Mirror(wheelhouse, "127.0.0.1", port=0, upstream=upstream)
        started.append(m)
        return m

    yield start
    for m in started:
        m.stop()


def _get(url: str, method: str = "GET") -> tuple[int, bytes, dict]:
    try:
        with OPENER.open(urllib.request.Request(url, method=method), timeout=10) as resp:
            return resp.status, resp.read(), dict(resp.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, b"", dict(exc.headers)


def _pip_download(index_url: str, dest: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    return subprocess.run([sys.executable, "-m", "pip", "download", "--isolated", "--no-cache-dir",
                           "--disable-pip-version-check", "--index-url", index_url, "--no-deps", "-d", str(dest),
                           "tinyproj"], capture_output=True, text=True, env=env, timeout=120)


def test_port_zero_binds_a_free_port(tmp_path, mirrors, upstream):
    m = mirrors(tmp_path / "wheelhouse", _upstream(upstream["index"]))
    assert m.port != 0
    assert m.base == f"http://127.0.0.1:{m.port}" and m.url == f"{m.base}/simple/"
    assert _get(m.url)[0] == 200


def test_pull_through_lists_downloads_once_and_pip_installs(tmp_path, mirrors, upstream):
    wheelhouse = tmp_path / "wheelhouse"
    m = mirrors(wheelhouse, _upstream(upstream["index"]))
    status, body, _ = _get(f"{m.url}tinyproj/")
    assert status == 200
    page = body.decode()
    assert f'href="/files/{WHEEL}#sha256={upstream["sha256"]}"' in page
    assert 'data-requires-python="&gt;=3.8"' in page
    assert not list(wheelhouse.glob("*.whl"))  # listed, not downloaded yet
    assert _get(f"{m.url}TinyProj/")[0] == 200  # any spelling of the name, as PEP 503 normalizes

    status, data, headers = _get(f"{m.base}/files/{WHEEL}", "HEAD")
    assert status == 200 and headers["Content-Length"] == str(upstream["wheel"].stat().st_size) and data == b""
    status, data, _ = _get(f"{m.base}/files/{WHEEL}")
    assert status == 200 and data == upstream["wheel"].read_bytes()
    assert (wheelhouse / WHEEL).read_bytes() == data
    assert json.loads((wheelhouse / ".meta.json").read_text())[WHEEL] == {"requires_python": ">=3.8"}
    assert not [p for p in wheelhouse.iterdir() if p.name.startswith(".part-")]

    upstream["wheel"].unlink()  # downloaded once: the cache answers from now on
    assert _get(f"{m.base}/files/{WHEEL}")[1] == data

    proc = _pip_download(m.url, tmp_path / "dl")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "dl" / WHEEL).read_bytes() == data


def test_cache_served_when_upstream_is_gone(tmp_path, mirrors, upstream):
    wheelhouse = tmp_path / "wheelhouse"
    first = mirrors(wheelhouse, _upstream(upstream["index"]))
    assert _pip_download(first.url, tmp_path / "dl1").returncode == 0
    first.stop()

    # a restart with no upstream: port 9 on loopback refuses at once
    m = mirrors(wheelhouse, _upstream("http://127.0.0.1:9/simple"))
    status, body, _ = _get(f"{m.url}tinyproj/")
    assert status == 200
    page = body.decode()
    assert f'href="/files/{WHEEL}#sha256={upstream["sha256"]}"' in page
    assert 'data-requires-python="&gt;=3.8"' in page  # kept in .meta.json across the restart
    assert '<a href="/simple/tinyproj/">tinyproj</a>' in _get(m.url)[1].decode()
    proc = _pip_download(m.url, tmp_path / "dl2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "dl2" / WHEEL).read_bytes() == upstream["wheel"].read_bytes()
    assert _get(f"{m.url}otherproj/")[0] == 404  # neither upstream nor cached


def test_requires_python_keeps_an_old_python_off_a_new_wheel(tmp_path, mirrors, upstream):
    """pip on a Python the wheel does not support skips it: the attribute reaches pip through the mirror."""
    upstream["page"].write_text(upstream["page"].read_text().replace("&gt;=3.8", "&gt;=3.99"))
    m = mirrors(tmp_path / "wheelhouse", _upstream(upstream["index"]))
    proc = _pip_download(m.url, tmp_path / "dl")
    assert proc.returncode != 0
    assert "Requires-Python >=3.99" in proc.stdout + proc.stderr


def test_a_file_that_does_not_match_its_sha256_is_refused(tmp_path, mirrors, upstream):
    wheelhouse = tmp_path / "wheelhouse"
    upstream["page"].write_text(upstream["page"].read_text().replace(upstream["sha256"], "0" * 64))
    m = mirrors(wheelhouse, _upstream(upstream["index"]))
    assert _get(f"{m.url}tinyproj/")[0] == 200
    assert _get(f"{m.base}/files/{WHEEL}")[0] == 404
    assert [p.name for p in wheelhouse.iterdir() if p.name != ".meta.json"] == []  # nothing cached, no part file


def test_unknown_files_and_paths_are_not_served(tmp_path, mirrors, upstream):
    wheelhouse = tmp_path / "wheelhouse"
    (tmp_path / "secret.whl").write_text("not for VMs")
    m = mirrors(wheelhouse, _upstream(upstream["index"]))
    assert _get(f"{m.base}/files/{WHEEL}")[0] == 404  # never listed: no source known
    assert _get(f"{m.base}/files/..%2Fsecret.whl")[0] == 404
    assert _get(f"{m.base}/files/.meta.json")[0] == 404
    assert _get(f"{m.base}/debian/Packages")[0] == 404  # no apt repository given


class _Counting(BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self):
        type(self).hits.append(self.path)
        self.send_error(503)

    def log_message(self, format, *args):
        pass


@pytest.fixture
def failing_index():
    _Counting.hits = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Counting)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/simple", _Counting.hits
    server.shutdown()
    server.server_close()
    thread.join()


def test_unreachable_upstream_is_not_asked_again_within_failure_ttl(tmp_path, mirrors, failing_index,
                                                                    monkeypatch):
    index, hits = failing_index
    monkeypatch.setattr(mirror_mod, "FAILURE_TTL", 1.0)
    up = _upstream(index)
    m = mirrors(tmp_path / "wheelhouse", up)
    assert _get(f"{m.url}tinyproj/")[0] == 404
    assert hits == ["/simple/tinyproj/"]
    start = time.monotonic()
    for project in ("tinyproj", "numpy", "flwr"):  # within the TTL: any project, no request upstream
        assert _get(f"{m.url}{project}/")[0] == 404
    assert time.monotonic() - start < 1.0
    assert hits == ["/simple/tinyproj/"]
    time.sleep(1.1)
    assert up.page("numpy") is None
    assert hits == ["/simple/tinyproj/", "/simple/numpy/"]  # asked again once the TTL is over


def test_a_project_missing_upstream_is_no_failure(tmp_path, mirrors, upstream):
    """A 404 from a reachable index is an answer: the next project is still asked for."""
    up = _upstream(upstream["index"])
    m = mirrors(tmp_path / "wheelhouse", up)
    assert _get(f"{m.url}nosuchproj/")[0] == 404
    assert up.failed_until == 0.0
    assert _get(f"{m.url}tinyproj/")[0] == 200


def test_a_web_index_cannot_make_the_mirror_read_local_files(tmp_path, mirrors):
    """An http(s) upstream's page linking file:///… (here a 'wheel' that is a secret of this machine): the link is
    not listed and the file is not served; only a file:// index may point at local files."""
    secret = tmp_path / "evil-1.0-py3-none-any.whl"
    secret.write_text("this machine's secret\n")
    page = (f'<a href="file://{secret}">{secret.name}</a>\n'
            f'<a href="file://{secret}">other-1.0-py3-none-any.whl</a>\n').encode()

    class Hostile(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, format, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hostile)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        m = mirrors(tmp_path / "wheelhouse", _upstream(f"http://127.0.0.1:{server.server_address[1]}/simple"))
        status, body, _ = _get(f"{m.url}evil/")
        assert status == 404 and b"evil-1.0" not in body  # nothing left to list
        for name in (secret.name, "other-1.0-py3-none-any.whl"):
            assert _get(f"{m.base}/files/{name}")[0] == 404
        assert not any((tmp_path / "wheelhouse").glob("*.whl"))
    finally:
        server.shutdown()
        server.server_close()
