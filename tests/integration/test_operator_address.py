"""The operator's address as SSH will see it: asked of address-echo services directly (never through HTTPS_PROXY)
and over IPv4; unsure, IPv6-only or unreachable -> one line asking for --ssh-source. Real sockets on loopback:
echo servers of our own (IPv4 and IPv6), a proxy that records every connection, and the local cloud's own echo.
Every test points all proxy variables at the recording proxy, so nothing can leave the machine."""

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest

from flwrazure.errors import UsageError
from flwrazure.workstation import operator
from tests.helpers.cloud import flwrazure

ECHO_ENV = "FLWRAZURE_ECHO_URLS"
PROXY_VARS = ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", "http_proxy", "HTTP_PROXY")
AZURE = SimpleNamespace(cloud="azure", verify=True, echo_url=None)  # what detect() reads of a Target


class _V6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6


def _echo(answer: str, host: str = "127.0.0.1", delay: float = 0.0):
    """An echo service answering `answer` (after `delay` s); returns (url, list of request paths, server)."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.path)
            time.sleep(delay)
            body = answer.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = (_V6Server if ":" in host else ThreadingHTTPServer)((host, 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{server.server_address[1]}/ip", seen, server


@pytest.fixture
def proxy(monkeypatch):
    """A 'proxy' that records connections and answers nothing; every proxy variable points at it."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    seen: list = []

    def accept():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            seen.append(conn.recv(200))
            conn.close()

    threading.Thread(target=accept, daemon=True).start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    for var in PROXY_VARS:
        monkeypatch.setenv(var, url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    yield SimpleNamespace(url=url, seen=seen)
    listener.close()


@pytest.fixture
def servers():
    made = []

    def make(answer, host="127.0.0.1", delay=0.0):
        url, seen, server = _echo(answer, host, delay)
        made.append(server)
        return url, seen

    yield make
    for server in made:
        server.shutdown()
        server.server_close()


def test_echo_goes_direct_not_through_https_proxy(proxy, servers, monkeypatch):
    url, seen = servers("203.0.113.50")
    monkeypatch.setenv(ECHO_ENV, url)
    assert operator.detect(AZURE) == "203.0.113.50"
    port = urlsplit(url).port
    # only the echo request matters here: a daemon thread of an earlier in-process test may still talk to its
    # own local cloud through the proxy variables this test sets
    assert seen == ["/ip"] and [r for r in proxy.seen if f":{port}".encode() in r] == []


def test_services_that_disagree_make_it_unsure(proxy, servers, monkeypatch):
    (a, _), (b, _) = servers("203.0.113.50"), servers("198.51.100.4")
    monkeypatch.setenv(ECHO_ENV, f"{a},{b}")
    with pytest.raises(UsageError, match=r"different addresses \(198.51.100.4, 203.0.113.50\).*--ssh-source"):
        operator.detect(AZURE)
    assert proxy.seen == []


def test_agreeing_services_and_a_broken_one_still_give_the_address(proxy, servers, monkeypatch):
    (a, _), (b, _), (c, _) = servers("203.0.113.50"), servers("203.0.113.50\n"), servers("<html>busy</html>")
    monkeypatch.setenv(ECHO_ENV, f"{a},{b},{c},http://127.0.0.1:1/")
    assert operator.detect(AZURE) == "203.0.113.50"


def test_ipv6_only_operator_is_told_and_asked_for_ssh_source(proxy, servers, monkeypatch):
    url, seen = servers("2001:db8::7", host="::1")  # reachable over IPv6 only, as an IPv6-only network is
    monkeypatch.setenv(ECHO_ENV, url)
    with pytest.raises(UsageError, match=r"IPv6 only \(2001:db8::7\).*IPv4.*--ssh-source"):
        operator.detect(AZURE)
    assert seen == ["/ip"] and proxy.seen == []


def test_unreachable_services_behind_a_proxy_say_so(proxy, monkeypatch):
    monkeypatch.setenv(ECHO_ENV, "http://127.0.0.1:1/ip")
    with pytest.raises(UsageError, match=f"through the proxy {proxy.url}.*--ssh-source"):
        operator.detect(AZURE)
    assert proxy.seen == []


def test_create_cluster_admits_the_address_the_local_clouds_echo_answers(product_cloud, home):
    cloud = product_cloud
    cloud.admin("PATCH", "config", {"echo_address": "203.0.113.77"})
    result = flwrazure(home, "create-cluster", "--cloud", "local", "--clients", "1", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["ssh_sources"] == ["203.0.113.77"]
    rule = cloud.network.security_rules.get("flower-rg", "flower-nsg", "flwrazure-ssh")
    assert rule.source_address_prefix == "203.0.113.77"


def test_the_address_is_asked_while_preflight_reads(product_cloud, home, servers):
    """On Azure the echo service is a round trip over the internet: create-cluster asks it at the same time as
    preflight's and the group's reads (it asked first and alone), and still admits the address it answers."""
    url, seen = servers("203.0.113.78", delay=1.5)
    since = time.time()
    result = flwrazure(home, "create-cluster", "--cloud", "local", "--clients", "1", "--json", env={ECHO_ENV: url})
    assert result.returncode == 0, result.stderr
    assert seen and json.loads(result.stdout)["ssh_sources"] == ["203.0.113.78"]
    log = [r for r in product_cloud.admin("GET", f"requests?since={since}").json()["value"]
           if r["path"].startswith("/subscriptions/")]
    first_read, first_write = log[0], next(r for r in log if r["method"] != "GET")
    assert first_read["method"] == "GET" and first_write["t"] - first_read["t"] >= 1.0, log[:8]


def test_create_cluster_with_an_injected_ipv6_only_echo_creates_nothing(product_cloud, home, servers):
    url, _ = servers("2001:db8::7", host="::1")
    since = time.time()
    result = flwrazure(home, "create-cluster", "--cloud", "local", env={ECHO_ENV: url})
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1 and "IPv6 only" in lines[0], result.stderr
    assert product_cloud.writes(since) == [] and list(product_cloud.resources.resource_groups.list()) == []


def test_a_local_cloud_without_an_echo_service_never_asks_the_internet(proxy, monkeypatch):
    monkeypatch.delenv(ECHO_ENV, raising=False)
    older = SimpleNamespace(cloud="local", verify=True, echo_url=None, operator_ip="198.18.0.1")
    assert operator.detect(older) == "198.18.0.1" and proxy.seen == []
