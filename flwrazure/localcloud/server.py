"""The HTTPS server in front of the ARM app (threads, keep-alive, TLS from the local CA), and the
in-process form tests use."""

from __future__ import annotations

import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from flwrazure.localcloud.arm.app import OPERATOR_IP, ArmApp
from flwrazure.localcloud.arm.faults import Faults
from flwrazure.localcloud.arm.store import Store
from flwrazure.localcloud.arm.store import in_dir as store_in
from flwrazure.localcloud.identity import DEFAULT, Directory, load
from flwrazure.localcloud.tls import ensure_certificates


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "flwrazure-localcloud"

    def setup(self) -> None:
        # the TLS handshake here, in this connection's thread: done in accept() (ssl's default) every new
        # connection waited for the handshakes of all before it in the one accepting thread (create-cluster for
        # 100 clients opens ~130 connections at once; some of its first PUTs left a second late)
        self.request.settimeout(60)  # a client that never finishes its handshake gives its thread back
        self.request.do_handshake()
        self.request.settimeout(None)
        super().setup()
        # headers and body leave in separate writes: without this, Nagle + delayed ACK add ~40 ms per request
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        status, headers, data = self.server.app.handle(self.command, self.path, dict(self.headers.items()), raw)
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data and self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = do_HEAD = _serve

    def log_message(self, format, *args):  # the app keeps its own request log
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def handle_error(self, request, client_address) -> None:
        import sys

        if isinstance(sys.exc_info()[1], (ssl.SSLError, ConnectionError, TimeoutError)):
            return  # a client that gave up or refused our certificate: nothing to report (accept() was silent too)
        super().handle_error(request, client_address)


class LocalCloudServer:
    """State folder -> a running HTTPS ARM endpoint on 127.0.0.1."""

    def __init__(self, state_dir: Path, port: int = 0, config: dict | None = None, faults: list | None = None,
                 driver=None, host: str = "127.0.0.1", hosts: str = "none", boot_delay: float = 2.0,
                 systemd: bool = True, vm_cpu: float | None = None, image_source: str = "image",
                 images_dir: Path | None = None, provision_lag: float = 0.0, first_boot_apt: float = 0.0,
                 say=None):
        state_dir.mkdir(parents=True, exist_ok=True)
        self.state_dir = state_dir
        self.identity = load(state_dir)
        self.ca, cert, key = ensure_certificates(state_dir / "tls")
        self.mirror = None
        if driver is None:
            driver = make_driver(hosts, state_dir, boot_delay, systemd, vm_cpu, image_source=image_source,
                                 images_dir=images_dir, provision_lag=provision_lag, first_boot_apt=first_boot_apt,
                                 say=say)
            if driver.name == "nspawn":  # VMs have no internet: give them their region's mirrors on the gateway
                from flwrazure.localcloud.hosts.plumbing import PUBLIC_GATEWAY
                from flwrazure.localcloud.mirror import Mirror

                image = next(iter(driver.images.values()), None)
                self.mirror = Mirror(state_dir / "wheelhouse", PUBLIC_GATEWAY, apt=image.apt if image else None)
                driver.pip_index = self.mirror.url
        self.app = ArmApp(self.identity, Store(store_in(state_dir)), config, driver, Faults(faults),
                          Directory(self.identity, state_dir))
        self.httpd = _Server((host, port), _Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True, do_handshake_on_connect=False)
        self.httpd.app = self.app
        self.port = self.httpd.server_address[1]
        self.endpoint = f"https://127.0.0.1:{self.port}"
        self.app.base_url = self.endpoint
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def info(self) -> dict:
        i = self.identity
        return {"endpoint": self.endpoint, "ca_bundle": str(self.ca), "tenant_id": i.tenant_id,
                "subscription_id": i.subscription_id, "client_id": i.client_id, "client_secret": i.client_secret,
                # which of the cloud's identities these are (`local identity add` prints others with these keys)
                "identity": DEFAULT, "object_id": i.client_id,
                "ca_certificate": Path(self.ca).read_text(),  # the CA itself, for a home on another account
                "authority": self.endpoint, "hosts": self.app.driver.name,
                "hosts_note": getattr(self.app.driver, "reason", None),
                "systemd": getattr(self.app.driver, "systemd", False),
                "vm_cpu": getattr(self.app.driver, "vm_cpu", None),
                "image_source": getattr(self.app.driver, "image_source", None),
                "vm_python": self.vm_python(),
                "pip_index": self.mirror.url if self.mirror else None,
                "pip_trusted_host": self.mirror.url.split("/")[2].split(":")[0] if self.mirror else None,
                # the address VMs see the operator's traffic come from (the host side of the public range)
                "operator_ip": OPERATOR_IP,
                # an address-echo service (what api.ipify.org is on Azure): answers the operator address above
                "echo_url": f"{self.endpoint}/_localcloud/echo"}

    def vm_python(self) -> str | None:
        """The Python version of the VMs' image (None: this machine's own, or no hosts)."""
        images = getattr(self.app.driver, "images", None) or {}
        image = next(iter(images.values()), None)
        return image.python if image else None

    def resume_hosts(self) -> None:
        """Boot again the VMs the cloud believes are running (a restart of the local cloud)."""
        from flwrazure.localcloud.arm.common import Ctx
        from flwrazure.localcloud.arm.vms import finish_interrupted_creates

        ctx = Ctx("GET", "/", {}, None, self.endpoint, self.identity.subscription_id, self.app.store, self.app.ops,
                  self.app.config, self.app.driver, self.app.faults)
        resume = getattr(self.app.driver, "resume", None)
        if resume:
            resume(ctx)  # the VMs that were running
        for vm_id in finish_interrupted_creates(ctx):  # and those a crash caught while being created
            print(f"flwrazure local cloud: VM {vm_id.rsplit('/', 1)[-1]} was being created at the last stop: "
                  "created now", flush=True)

    def start(self) -> LocalCloudServer:
        """Serve in background threads (in-process use)."""
        self._threads = [threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                          daemon=True, name="localcloud-http"),
                         threading.Thread(target=self._flusher, daemon=True, name="localcloud-flush")]
        for t in self._threads:
            t.start()
        return self

    FLUSH_EVERY = 1.0  # s: the store is written whole, under its lock (at 400 resources ~30 ms that every request
    # waits for: every 0.2 s that was a seventh of the server's time while a 100-client cluster was created)

    def _flusher(self) -> None:
        while not self._stop.wait(self.FLUSH_EVERY):
            self.app.store.flush()

    def serve_forever(self) -> None:
        flusher = threading.Thread(target=self._flusher, daemon=True)
        flusher.start()
        try:
            self.httpd.serve_forever(poll_interval=0.2)
        finally:
            self._stop.set()

    def stop(self) -> None:
        self._stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.app.close()
        if self.mirror:
            self.mirror.stop()


def make_driver(hosts: str, state_dir: Path, boot_delay: float, systemd: bool = True,
                vm_cpu: float | None = None, **image_options):
    """'none', 'nspawn', or 'auto' (nspawn where this machine allows it, else none)."""
    from flwrazure.localcloud.hosts import NullDriver

    if hosts == "none":
        return NullDriver()
    from flwrazure.localcloud.hosts import nspawn

    why = nspawn.available()
    if why is None and image_options.get("image_source", "image") == "image":
        from flwrazure.localcloud import images

        folder = image_options.get("images_dir") or images.images_dir(state_dir)
        if not images.cached(folder):
            why = images.available()
    if why:
        if hosts == "auto":
            return NullDriver(reason=why)
        raise RuntimeError(f"--hosts nspawn: {why}")
    return nspawn.NspawnDriver(state_dir, boot_delay=boot_delay, systemd=systemd, vm_cpu=vm_cpu, **image_options)
