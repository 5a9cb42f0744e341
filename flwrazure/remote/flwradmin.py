"""The flwr CLI on the server VM, talking to its own SuperLink over loopback: register SuperNode keys (all at
once) and count the SuperNodes online. Version differences are planned in flwrazure.plan.admin."""

from __future__ import annotations

import json
import shlex
import time
from dataclasses import dataclass

from flwrazure.errors import FlwrazureError
from flwrazure.plan import admin, versions
from flwrazure.plan.admin import PARALLEL, batch_each, batch_online, bounded
from flwrazure.plan.services import Layout
from flwrazure.remote.ssh import output, put_text, run


@dataclass(frozen=True)
class Admin:
    flwr: str  # command prefix: environment + the venv's flwr
    target: str  # connection arguments after the subcommand
    directory: str
    version: str
    python: str = ""  # the venv's python with flwr's environment, for the batch script (admin.BATCH_SCRIPT)

    @property
    def script(self) -> str:
        return f"{self.directory}/{admin.BATCH}"

    def args(self, *command: str) -> list[str]:
        """flwr's argv (after `flwr`) for a command against this SuperLink, e.g. args("supernode", "list")."""
        return [*command, *self.target.split(), "--format", "json"]


def setup(conn, layout: Layout, version: str, control_port: int, secure: bool) -> Admin:
    directory = layout.path("admin")
    run(conn, f"mkdir -p {shlex.quote(directory)}/keys")
    files = {**admin.files(version, control_port, layout.path("ca.crt") if secure else None),
             admin.BATCH: admin.BATCH_SCRIPT}
    for name, text in files.items():
        put_text(conn, text, f"{directory}/{name}", "644")
    env = f"FLWR_HOME={shlex.quote(directory)} FLWR_TELEMETRY_ENABLED=0 FLWR_DISABLE_UPDATE_CHECK=1"
    return Admin(f"{env} {shlex.quote(layout.venv)}/bin/flwr", admin.target(version, directory), directory, version,
                 f"{env} {shlex.quote(layout.venv)}/bin/python")


def _json(out: str) -> dict:
    return json.loads(out[out.index("{"):])


def nodes(conn, adm: Admin) -> list[dict] | None:
    """The SuperLink's SuperNodes (node-id, status, ...): [] while it does not answer, None when this Flower has
    no `flwr supernode list` (before 1.23)."""
    if not versions.supernode_cli(adm.version):
        return None
    listed = answered_nodes(conn, adm)
    return [] if listed is None else listed


def answered_nodes(conn, adm: Admin) -> list[dict] | None:
    """The SuperLink's SuperNodes as it listed them, None when it did not answer (an empty list is an answer:
    no SuperNode at all). Only for a Flower with `flwr supernode list` (1.23+)."""
    out = output(conn, f"{adm.flwr} supernode list {adm.target} --format json")
    try:
        data = _json(out)
    except ValueError:
        return None
    return list(data.get("nodes", [])) if data.get("success", True) else None


def count_online(listed: list[dict]) -> int:
    return sum(1 for n in listed if n.get("status") == "online")


def online_count(conn, adm: Admin) -> int | None:
    listed = nodes(conn, adm)
    return None if listed is None else count_online(listed)


def by_vm(registered: dict[str, str], listed: list[dict], vms: list[str]) -> dict[str, str]:
    """Each client VM's SuperNode as the SuperLink sees it (its registered node id -> status): "online",
    "offline", ..., "not registered", or "not seen" (registered, but the SuperLink does not list it)."""
    status = {str(n.get("node-id")): n.get("status") or "unknown" for n in listed}
    return {vm: status.get(str(registered[vm]), "not seen") if vm in registered else "not registered"
            for vm in vms}


def wait_online(conn, adm: Admin, want: int, timeout: float = 180) -> int | None:
    """Until the SuperLink lists `want` SuperNodes online (they retry with backoff up to 20 s): polled by one flwr
    process on the server VM (admin.BATCH_SCRIPT), else by one `flwr supernode list` every 2 s."""
    start, count = time.monotonic(), 0
    if adm.python and versions.supernode_cli(adm.version):
        result = conn.run(batch_online(adm.python, adm.script, want, timeout, adm.args("supernode", "list")),
                          hide=True, warn=True, in_stream=False, timeout=timeout + 60)
        if result.exited != admin.NOT_CAPTURED:
            try:
                listed = _json(result.stdout)
            except ValueError:
                listed = None
            if listed is not None and listed.get("success", True):
                count = count_online(list(listed.get("nodes", [])))
                if count >= want:
                    return count
    while time.monotonic() - start < timeout:
        count = online_count(conn, adm)
        if count is None or count >= want:
            return count
        time.sleep(2)
    raise FlwrazureError(f"only {count} of {want} SuperNodes came online within {timeout:.0f} s: check "
                         "`journalctl -u flower-supernode` on the client VMs (`flwrazure status` lists their IPs).")


def register_once_healthy(conn, adm: Admin, keys: dict[str, str], probe: str, failing: str,
                          wait: float) -> tuple[float | None, dict[str, str]]:
    """Register keys as soon as the SuperLink is healthy, by one flwr process that starts while the SuperLink
    boots (its imports, 1.3-1.6 CPU-seconds, then are off the path): `probe` prints 200 once it is healthy,
    `failing` its restarts. Returns the seconds from the command's start until healthy (None: not within `wait`,
    or crash-looping; nothing registered) and VM name -> node id of the keys it registered (a key it gave no
    answer for is missing: register() it)."""
    if not keys or not adm.python:
        return None, {}
    kdir = shlex.quote(f"{adm.directory}/keys")
    writes = " && ".join(f"printf '%s\\n' {shlex.quote(line)} > {kdir}/{vm}.pub" for vm, line in keys.items())
    batch = batch_each(adm.python, adm.script, list(keys),
                       adm.args("supernode", "register", f"{adm.directory}/keys/@.pub"), probe, failing, wait)
    out = conn.run(f"{writes} && {batch}", hide=True, warn=True, in_stream=False, timeout=wait + 120).stdout
    healthy = next((line.split()[1] for line in out.splitlines() if line.startswith("@@healthy ")), None)
    if healthy is None:
        return None, {}
    return float(healthy), _answered(out, keys)


def _answered(out: str, keys: dict[str, str]) -> dict[str, str]:
    """The batch's sections for these keys that carry an answer (JSON), parsed as parse_registrations does."""
    return parse_registrations("".join(f"@@{chunk}" for chunk in out.split("@@")[1:]
                                       if chunk.partition("\n")[0] in keys and "{" in chunk))


def register(conn, adm: Admin, keys: dict[str, str], parallel: int = PARALLEL) -> dict[str, str]:
    """Register public keys (VM name -> OpenSSH public key line) with the SuperLink in one SSH command, at most
    `parallel` flwr processes at a time (each is a Python process of ~100 MB: a hundred at once exhaust a
    D2s_v3's 8 GiB); returns VM name -> node id ("registered" when the SuperLink already knew the key)."""
    if not keys:
        return {}
    kdir = shlex.quote(f"{adm.directory}/keys")
    writes = " && ".join(f"printf '%s\\n' {shlex.quote(line)} > {kdir}/{vm}.pub" for vm, line in keys.items())
    done: dict[str, str] = {}
    if adm.python:  # all keys by one flwr process (admin.BATCH_SCRIPT); what it did not answer, the plain way
        batch = batch_each(adm.python, adm.script, list(keys),
                           adm.args("supernode", "register", f"{adm.directory}/keys/@.pub"))
        done = _answered(output(conn, f"{writes} && {batch}"), keys)
    todo = [vm for vm in keys if vm not in done]
    if not todo:
        return done
    jobs = bounded(todo, f"{adm.flwr} supernode register {kdir}/@.pub {adm.target} --format json "
                         f"> {kdir}/@.out 2>&1", parallel)
    show = "; ".join(f"echo '@@{vm}'; cat {kdir}/{vm}.out" for vm in todo)
    return {**done, **parse_registrations(run(conn, f"{writes} && {jobs}; {show}"))}


def _sections(out: str) -> list[tuple[str, str, dict]]:
    """The `@@<vm>` sections of a bounded flwr command's output: (VM name, its text, its JSON or {})."""
    found = []
    for chunk in out.split("@@")[1:]:
        vm, _, text = chunk.partition("\n")
        try:
            data = _json(text)
        except ValueError:
            data = {}
        found.append((vm, text, data))
    return found


def parse_registrations(out: str) -> dict[str, str]:
    """The `@@<vm>` sections of the register command's output -> VM name -> node id."""
    nodes = {}
    for vm, text, data in _sections(out):
        node = data.get("node-id") or data.get("node_id") or data.get("nodeId")
        if node is None and "already" in text.lower():
            node = "registered"
        if node is None:
            raise FlwrazureError(f"registering SuperNode {vm} with the SuperLink failed: {text.strip()[:300]}; "
                                 "re-run `flwrazure start` (journalctl -u flower-superlink on the server VM).")
        nodes[vm] = str(node)
    return nodes


def runs(conn, adm: Admin) -> list[dict] | None:
    """The SuperLink's runs (`flwr ls --format json`): run-id, status, ...; None when it did not answer."""
    out = output(conn, f"cd {shlex.quote(adm.directory)} && {adm.flwr} ls {adm.target} --format json")
    try:
        data = _json(out)
    except ValueError:
        return None
    return list(data.get("runs", [])) if data.get("success", True) else None


def unregister(conn, adm: Admin, node_ids: dict[str, int]) -> dict[str, str]:
    """Withdraw SuperNodes' registrations (VM name -> node id), all in one SSH command; returns VM name -> "ok" or
    the error text. A node the SuperLink no longer knows as registered counts as done."""
    if not node_ids:
        return {}
    kdir = shlex.quote(f"{adm.directory}/keys")
    pairs = [f"{vm}:{node}" for vm, node in node_ids.items()]
    jobs = bounded(pairs, f"vm=@; {adm.flwr} supernode unregister ${{vm#*:}} {adm.target} --format json "
                          f"> {kdir}/${{vm%%:*}}.unreg 2>&1", PARALLEL)
    show = "; ".join(f"echo '@@{vm}'; cat {kdir}/{vm}.unreg" for vm in node_ids)
    return parse_unregistrations(run(conn, f"mkdir -p {kdir} && cd {shlex.quote(adm.directory)} && {jobs}; {show}"))


def parse_unregistrations(out: str) -> dict[str, str]:
    """The `@@<vm>` sections of the unregister command's output -> VM name -> "ok" or the error text."""
    done = {}
    for vm, text, data in _sections(out):
        low = text.lower()
        if data.get("success") or "unregistered successfully" in low or "not found" in low or \
                "already unregistered" in low or "does not exist" in low:
            done[vm] = "ok"
        else:
            done[vm] = (data.get("error-message") or text).strip()[:300] or "no answer"
    return done
