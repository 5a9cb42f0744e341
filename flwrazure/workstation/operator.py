"""The operator's public address, for rules that must admit only the operator (SSH, the Control port).

The address that counts is the one the operator's SSH connections come from. SSH goes straight to a VM's public
IPv4 address and never through HTTPS_PROXY, so the question to the address-echo services goes the same way: direct
(proxy settings ignored) and over IPv4. All services are asked at once; when they disagree, or only IPv6 works, or
nothing answers, the operator is told why and asked for --ssh-source instead of getting a rule that locks them out.
The services are injectable: FLWRAZURE_ECHO_URLS (comma-separated), or the one the local cloud advertises."""

from __future__ import annotations

import http.client
import ipaddress
import os
import socket
import ssl
import urllib.request

from flwrazure import workers
from flwrazure.errors import UsageError

ECHO_SERVICES = ("https://api.ipify.org", "https://ifconfig.me/ip", "https://icanhazip.com")
ECHO_ENV = "FLWRAZURE_ECHO_URLS"
PROXY_VARS = ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", "http_proxy", "HTTP_PROXY")
TIMEOUT = 4.0


def echo_urls(target) -> list[str]:
    env = os.environ.get(ECHO_ENV, "")
    if env.strip():
        return [u.strip() for u in env.split(",") if u.strip()]
    local = getattr(target, "echo_url", None)
    if local:
        return [local]
    return [] if getattr(target, "cloud", "azure") == "local" else list(ECHO_SERVICES)  # the local cloud is offline


def _connector(family: int):
    """socket.create_connection limited to one address family (IPv4: the family Azure's rules speak)."""

    def create(address, timeout=socket._GLOBAL_DEFAULT_TIMEOUT, source_address=None, *args, **kwargs):
        host, port = address[0], address[1]
        error: OSError = OSError(f"{host} has no {'IPv4' if family == socket.AF_INET else 'IPv6'} address")
        for fam, kind, proto, _, addr in socket.getaddrinfo(host, port, family, socket.SOCK_STREAM):
            sock = socket.socket(fam, kind, proto)
            try:
                if timeout is not socket._GLOBAL_DEFAULT_TIMEOUT:
                    sock.settimeout(timeout)
                sock.connect(addr)
                return sock
            except OSError as exc:
                error = exc
                sock.close()
        raise error

    return create


class _Direct(urllib.request.HTTPSHandler):
    """http(s) over one address family; with ProxyHandler({}) in the opener, never through a proxy."""

    def __init__(self, family: int, context: ssl.SSLContext):
        super().__init__(context=context)
        self.family = family

    def _make(self, cls):
        def factory(host, **kwargs):
            conn = cls(host, **kwargs)
            conn._create_connection = _connector(self.family)
            return conn
        return factory

    def https_open(self, req):
        return self.do_open(self._make(http.client.HTTPSConnection), req, context=self._context)

    def http_open(self, req):
        return self.do_open(self._make(http.client.HTTPConnection), req)


def ask(url: str, family: int, cafile: str | None = None, timeout: float = TIMEOUT) -> str:
    """One echo service's answer (the text it returns), asked directly over the given family."""
    context = ssl.create_default_context(cafile=cafile) if cafile else ssl.create_default_context()
    opener = urllib.request.OpenerDirector()
    for handler in (urllib.request.ProxyHandler({}), _Direct(family, context), urllib.request.HTTPErrorProcessor(),
                    urllib.request.HTTPDefaultErrorHandler(), urllib.request.HTTPRedirectHandler()):
        opener.add_handler(handler)
    with opener.open(url, timeout=timeout) as resp:
        return resp.read(64).decode(errors="replace").strip()


def _attempt(url: str, family: int, cafile: str | None) -> str | Exception:
    try:
        return ask(url, family, cafile)
    except Exception as exc:  # an echo service that fails is one answer among several
        return exc


def proxy_setting() -> str | None:
    return next((os.environ[v] for v in PROXY_VARS if os.environ.get(v)), None)


def _address(answer, version: int) -> str | None:
    """The answer as an address of that IP version, None for anything else (an error, an HTML page, …)."""
    if not isinstance(answer, str):
        return None
    try:
        return str(ipaddress.IPv4Address(answer) if version == 4 else ipaddress.IPv6Address(answer))
    except ValueError:
        return None


def decide(v4: dict[str, str | Exception], v6: str | Exception | None, proxy: str | None,
           flag: str = "--ssh-source") -> str:
    """The operator's IPv4 address from the echo services' answers, or one line saying why it is not known.

    v4: each service's answer over IPv4; v6: an answer over IPv6 (asked only when no IPv4 answer came);
    proxy: the proxy the operator's HTTPS otherwise uses (for the message); flag: the option that gives the address
    instead (for the message)."""
    seen = {a for a in (_address(answer, 4) for answer in v4.values()) if a}
    if len(seen) == 1:
        return next(iter(seen))
    if len(seen) > 1:
        found = ", ".join(sorted(seen))
        raise UsageError(f"address-echo services saw your connections come from different addresses ({found}), "
                         f"so it is unsure which one SSH will use: pass {flag} with the right one (or "
                         f"{flag} {','.join(sorted(seen))}).")
    if _address(v6, 6):
        raise UsageError(f"you reach the internet over IPv6 only ({_address(v6, 6)}); Azure public IPs and these SSH "
                         f"rules are IPv4, so SSH needs an IPv4 path (VPN, NAT64, another network): pass {flag} "
                         "<the IPv4 address your SSH comes from>.")
    if proxy:
        raise UsageError(f"could not reach an address-echo service directly (your HTTPS goes through the proxy "
                         f"{proxy}, but SSH does not, so the proxy's address would be the wrong one): pass "
                         f"{flag} <your public IPv4 address>.")
    reasons = "; ".join(f"{url}: {answer}" for url, answer in v4.items())[:200]
    anyone = " (or 'any', which opens SSH to everyone)" if flag == "--ssh-source" else ""
    raise UsageError(f"could not detect your public IPv4 address ({reasons}): pass {flag} <your-ip>{anyone}.")


def detect(target, flag: str = "--ssh-source") -> str:
    """The public IPv4 address the operator's SSH connections will come from (see the module's docstring);
    flag: the option the messages ask for when it is not known."""
    urls = echo_urls(target)
    if not urls:  # a local cloud from before it served an echo: the address it advertises
        if getattr(target, "operator_ip", None):
            return target.operator_ip
        raise UsageError("the local cloud advertises no operator address: restart it (`flwrazure local down` and "
                         f"`flwrazure local up`) or pass {flag}.")
    verify = getattr(target, "verify", True)
    cafile = verify if isinstance(verify, str) else None
    with workers.pool(len(urls)) as pool:
        v4 = dict(zip(urls, pool.map(lambda u: _attempt(u, socket.AF_INET, cafile), urls), strict=True))
    v6: str | Exception | None = None
    if not any(isinstance(a, str) for a in v4.values()):
        for url in urls:
            v6 = _attempt(url, socket.AF_INET6, cafile)
            if isinstance(v6, str):
                break
    return decide(v4, v6, proxy_setting(), flag)


def probe_tcp(ip: str, port: int, timeout: float = 3.0) -> str:
    """Can this machine open a TCP connection to ip:port? "open", "refused" or "timeout" (a rule dropping it)."""
    try:
        with socket.create_connection((ip, port), timeout=timeout):
            return "open"
    except ConnectionRefusedError:
        return "refused"
    except TimeoutError:
        return "timeout"
    except OSError as exc:
        return f"unreachable ({exc.strerror or exc})"
