"""A local cloud served in-process on a free port, and the real Azure SDK clients pointed at it."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import requests
from azure.identity import ClientSecretCredential
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.network import NetworkManagementClient
from azure.mgmt.resource.resources import ResourceManagementClient

from flwrazure.localcloud.server import LocalCloudServer


@dataclass
class Cloud:
    server: LocalCloudServer
    info: dict
    credential: ClientSecretCredential
    resources: ResourceManagementClient
    network: NetworkManagementClient
    compute: ComputeManagementClient

    @property
    def sub(self) -> str:
        return self.info["subscription_id"]

    def token(self) -> str:
        return self.credential.get_token("https://management.azure.com/.default").token

    def raw(self, method: str, path: str, body=None, api: str | None = "2025-04-01", token: str | None = "default",
            **params) -> requests.Response:
        """A plain HTTPS request, for what the SDK hides (status codes, headers, admin endpoints)."""
        headers = {}
        if token == "default":
            token = self.token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if api:
            params["api-version"] = api
        return requests.request(method, self.info["endpoint"] + path, params=params, headers=headers,
                                data=json.dumps(body) if body is not None else None,
                                verify=self.info["ca_bundle"], timeout=30)

    def admin(self, method: str, what: str, body=None) -> requests.Response:
        return self.raw(method, f"/_localcloud/{what}", body, api=None)

    def writes(self, since: float = 0) -> list[dict]:
        log = self.admin("GET", f"requests?since={since}").json()["value"]
        return [r for r in log if r["method"] in ("PUT", "POST", "DELETE", "PATCH")
                and r["path"].startswith("/subscriptions/")]  # ARM writes, not token requests

    def rg_path(self, rg: str) -> str:
        return f"/subscriptions/{self.sub}/resourceGroups/{rg}"


def start_cloud(state_dir: Path, config: dict | None = None, polling: float = 0.02) -> Cloud:
    return clients_for(LocalCloudServer(state_dir, port=0, config=config).start(), polling)


def publish(cloud: Cloud, home: Path) -> None:
    """Write server.json as `flwrazure local up` does, so product commands find this in-process cloud."""
    import os

    path = home / "local" / "server.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**cloud.info, "pid": os.getpid()}))


def flwrazure(home: Path, *args: str, timeout: float = 120, env: dict | None = None, cwd: Path | None = None,
              group: int | None = None):
    """Run the real CLI in a subprocess, as a user would (with `group`: as that group id, for iptables' owner match)."""
    import os
    import subprocess
    import sys

    full = {**os.environ, "FLWRAZURE_HOME": str(home), "FLWRAZURE_POLL": "0.05", "COLUMNS": "200", **(env or {})}
    return subprocess.run([sys.executable, "-m", "flwrazure", *args], env=full, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, cwd=cwd, group=group)


THROTTLING_SHOWN = re.compile(r"\b429\b|Throttl|TooManyRequests|Too Many Requests|Traceback")


def shows_throttling(said: str, *paths: Path | str) -> bool:
    """Whether a command's messages (its stderr: stdout is data, where a price or an id may hold 429) show
    throttling or a traceback to the user. The temporary paths they name are taken out first: a directory such as
    pytest-429 is not a 429."""
    for path in paths:
        said = said.replace(str(path), "<path>")
    return bool(THROTTLING_SHOWN.search(said))


def clients_for(server: LocalCloudServer | None, polling: float = 0.02, info: dict | None = None) -> Cloud:
    """SDK clients for an already started server (or, from its info, for one running in another process)."""
    info = info or server.info()
    cred = ClientSecretCredential(info["tenant_id"], info["client_id"], info["client_secret"],
                                  authority=info["endpoint"], disable_instance_discovery=True,
                                  connection_verify=info["ca_bundle"])
    kw = {"base_url": info["endpoint"], "connection_verify": info["ca_bundle"], "polling_interval": polling}
    return Cloud(server, info, cred, ResourceManagementClient(cred, info["subscription_id"], **kw),
                 NetworkManagementClient(cred, info["subscription_id"], **kw),
                 ComputeManagementClient(cred, info["subscription_id"], **kw))


def vm_journals(home: Path, lines: int = 40) -> str:
    """The last journal lines of every sandbox VM under $FLWRAZURE_HOME (read from their disks, as Azure's boot
    diagnostics would show them): for a test that failed to reach a VM."""
    import subprocess

    out = []
    for journal in sorted((home / "local").glob("**/hosts/*/upper/var/log/journal/*")):
        try:
            text = subprocess.run(["journalctl", "-D", str(journal), "--no-pager", "-n", str(lines), "-o",
                                   "short-precise"], capture_output=True, text=True, timeout=30).stdout
        except (OSError, subprocess.SubprocessError) as exc:
            text = f"(journalctl: {exc})"
        out.append(f"== {journal.parents[4].name}\n{text}")
    return "\n".join(out)


def local_log_tail(home: Path, lines: int) -> str:
    """The last lines of the local cloud's log under $FLWRAZURE_HOME (boot diagnostics of stalled VMs land there)."""
    log = home / "local" / "server.log"
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else ""



def until(check, timeout: float) -> bool:
    """Poll `check` every 0.2 s until it holds or `timeout` passes."""
    import time

    end = time.monotonic() + timeout
    while not check():
        if time.monotonic() > end:
            return False
        time.sleep(0.2)
    return True


def _sigint_as_at_a_terminal() -> None:
    """preexec_fn: SIGINT at its default, as a terminal's foreground process has it. A job that a non-interactive
    shell started in the background (a CI runner's, for one) inherits SIGINT ignored; Python then never raises
    KeyboardInterrupt, and the CLI would ignore the test's Ctrl-C."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Follower:
    """`flwrazure logs VM --follow --lines 0` as a user runs it at a terminal: its stdout and stderr collected line by
    line in `said["out"]` / `said["err"]`; `stop()` is Ctrl-C, and kills it when it does not end within `grace` s
    (a follower left behind would poll an address that later tests give to their VMs)."""

    def __init__(self, env: dict, vm: str):
        import subprocess
        import sys
        import threading

        self.proc = subprocess.Popen([sys.executable, "-m", "flwrazure", "logs", vm, "--follow", "--lines", "0"],
                                     env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     preexec_fn=_sigint_as_at_a_terminal)
        self.said: dict[str, list[str]] = {"out": [], "err": []}
        self._readers = [threading.Thread(target=lambda f=f, k=k: self.said[k].extend(iter(f.readline, "")),
                                          daemon=True) for f, k in ((self.proc.stdout, "out"),
                                                                    (self.proc.stderr, "err"))]
        for r in self._readers:
            r.start()

    def stop(self, grace: float = 30) -> float:
        """Ctrl-C; the seconds it took to end (killed after `grace`)."""
        import signal
        import subprocess
        import time

        asked = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        took = time.monotonic() - asked
        for r in self._readers:
            r.join(timeout=10)
        return took
