"""logs: the Flower services' logs from the VMs (journald units, or the restart loop's file), merged in time order
with a VM prefix; --follow polls every VM for new lines until interrupted and rides out a VM restart (it
reconnects and continues after the last line it showed)."""

from __future__ import annotations

import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from flwrazure import ui
from flwrazure.errors import FlwrazureError, UsageError
from flwrazure.plan import logs as plan
from flwrazure.plan import names
from flwrazure.workstation import state

POLL = 1.0


def pick(st: dict, wanted: list[str]) -> list[names.VmNames]:
    """The VMs named (full or short names), or all of them."""
    vms = names.all_vms(st["cluster"], st["clients"])
    if not wanted:
        return vms
    out = []
    for text in wanted:
        v = names.resolve_vm(st["cluster"], st["clients"], text)
        if v is None:
            raise UsageError(f"no VM {text!r} in cluster {st['cluster']}: use one of "
                             f"{', '.join(x.vm for x in vms)} (or server, client-N).")
        if v not in out:
            out.append(v)
    return out


def route(rows: dict[str, dict], vm: str) -> tuple[str, str | None] | None:
    """(address, jump host or None) of an SSH connection to the VM (plan.layout.route), None when none leads there."""
    from flwrazure.plan import layout

    server = next((r for r in rows.values() if r["role"] == "server"), None)
    return layout.route(rows[vm], server)


def addresses(st: dict) -> dict[str, dict]:
    """VM name -> row (public IP, power state) from ARM."""
    from flwrazure.azure import inventory
    from flwrazure.azure.errors import translate
    from flwrazure.azure.target import connect, require_hosts

    target = connect(st["cloud"], st["subscription"])
    try:
        snap = inventory.snapshot(target, st["resource_group"], ("vmview", "pip", "nic"))
    except Exception as exc:
        raise translate(exc, f"resource group {st['resource_group']}") from exc
    rows = {r["vm"]: r for r in inventory.vm_rows(snap, names.all_vms(st["cluster"], st["clients"]))}
    if any(r["state"] == "running" and route(rows, vm) for vm, r in rows.items()):
        require_hosts(st["cloud"])  # logs and ssh would connect: not to a local cloud without sandbox VMs
    return rows


class _Source:
    """One VM's log: its connection (re-made when lost) and cursor."""

    def __init__(self, st: dict, vm: names.VmNames, hop: tuple[str, str | None] | None):
        from flwrazure.commands.start import SUPERLINK, SUPERNODE
        from flwrazure.plan.services import Layout
        from flwrazure.remote.daemons import SYSTEMD

        self.st, self.vm = st, vm
        self.ip, self.via = hop or (None, None)
        self.unit = SUPERLINK if vm.role == "server" else SUPERNODE
        self.kind = (st.get("supervisors") or {}).get(vm.vm, SYSTEMD)
        self.layout = Layout(f"/home/{st['admin_user']}")
        self.conn = None
        self.cursor = None
        self.lost = False
        self.next_try = 0.0

    def _connect(self):
        from flwrazure.remote import ssh

        if self.conn is None:
            conn = ssh.connect(self.ip, self.st["admin_user"], self.st["ssh_private_key"],
                               state.cluster_dir(self.st["cluster"]) / "known_hosts", timeout=5, via=self.via)
            conn.open()
            conn.transport.set_keepalive(5)
            self.conn = conn
        return self.conn

    def recent(self, lines: int | None, since_s: int | None) -> list[plan.Line]:
        from flwrazure.remote import logs as remote

        got, self.cursor = remote.recent(self._connect(), self.vm.vm, self.unit, self.kind, self.layout, lines,
                                         since_s)
        return got

    def more(self) -> list[plan.Line]:
        """New lines; notices when the VM stops answering and when it is back."""
        from flwrazure.remote import logs as remote

        now = time.monotonic()
        if self.lost and now < self.next_try:
            return []
        try:
            conn = self._connect()
            before = conn.transport
            got = remote.more(conn, self.vm.vm, self.unit, self.layout, self.cursor)
            if before is not None and conn.transport is not before:  # Fabric re-opened a dropped connection itself
                return [plan.Line(self.vm.vm, time.time(), "(flwrazure: connection lost: the VM restarted?)"),
                        plan.Line(self.vm.vm, time.time(), "(flwrazure: reconnected)"), *got]
        except Exception as exc:  # a restarting VM: keep trying, show it once
            self.close()
            self.next_try = now + 3
            if not self.lost:
                self.lost = True
                return [plan.Line(self.vm.vm, time.time(), f"(flwrazure: connection lost: {type(exc).__name__}; "
                                                           "reconnecting…)")]
            return []
        if self.lost:
            self.lost = False
            got = [plan.Line(self.vm.vm, time.time(), "(flwrazure: reconnected)"), *got]
        return got

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:  # closing a dead connection
                pass
            self.conn = None


def run(cluster: str, wanted: list[str], follow: bool, since: str | None, lines: int | None, out=None) -> int:
    """Prints the merged lines; returns the number printed (follow: until Ctrl-C)."""
    out = out or sys.stdout
    since_s = plan.parse_duration(since) if since else None
    if lines is not None and lines < 0:
        raise UsageError(f"--lines {lines}: give 0 or more lines per VM.")
    st = state.load(cluster)
    if not st.get("started"):
        raise UsageError(f"Flower was not started on cluster {cluster}: there are no service logs yet "
                         f"(`flwrazure start --cluster {cluster}`).")
    vms = pick(st, wanted)
    rows = addresses(st)
    sources = [_Source(st, v, route(rows, v.vm)) for v in vms]
    down = [s.vm.vm for s in sources if rows[s.vm.vm]["state"] != "running" or not s.ip]
    if down and not follow:
        ui.warn(f"not running, no logs from: {', '.join(down)}")
    width = max(len(v.vm) for v in vms)
    shown = 0
    lock = threading.Lock()

    def show(batch: list[plan.Line]) -> None:
        nonlocal shown
        with lock:
            for line in batch:
                out.write(plan.prefix(line, width) + "\n")
            out.flush()
            shown += len(batch)

    def first(src: _Source) -> list[plan.Line]:
        if src.ip is None:
            return []
        if src.vm.vm in down:  # deallocated or stopped: nothing to read now (follow: read once it runs)
            src.lost = follow
            return []
        try:
            return src.recent(lines, since_s)
        except Exception as exc:
            src.close()
            src.lost = True
            if not follow:
                raise FlwrazureError(f"{src.vm.vm}: cannot read its log ({exc}).") from None
            return [plan.Line(src.vm.vm, time.time(), f"(flwrazure: not reachable: {type(exc).__name__}; "
                                                      "waiting…)")]

    def step(src: _Source) -> list[plan.Line]:
        """One poll: new lines; a VM never read so far (not reachable at first) is read from now on once it
        answers (tried every few seconds)."""
        if src.cursor is not None:
            return src.more()
        if not src.ip or time.monotonic() < src.next_try:
            return []
        try:
            src.recent(0, None)
        except Exception:
            src.close()
            src.next_try = time.monotonic() + 3
            return []
        src.lost = False
        return [plan.Line(src.vm.vm, time.time(), "(flwrazure: reachable)")]

    pool = ThreadPoolExecutor(max_workers=min(16, len(sources)))
    try:
        show(plan.merge({s.vm.vm: got for s, got in zip(sources, pool.map(first, sources), strict=True)}))
        if follow:  # on stderr: with --lines 0 nothing else says it is connected and waiting
            ui.info(f"following {len(sources)} VM(s) for new lines (Ctrl-C to stop)")
        while follow:
            time.sleep(POLL)
            batches = list(pool.map(step, sources))
            show(plan.merge({s.vm.vm: b for s, b in zip(sources, batches, strict=True)}))
    except KeyboardInterrupt:  # the normal end of --follow
        pass
    finally:
        # not waiting for a poll in flight: one to a VM that went away waits for its command's bound (15 s) or a
        # connection attempt's (up to a minute), and Ctrl-C must end --follow at once
        pool.shutdown(wait=False, cancel_futures=True)
        for s in sources:
            s.close()
    return shown
