"""ssh: an interactive shell on one VM (default the server), or a command on one VM or on every VM at once
(--all) with each output line prefixed by its VM; the exit code is non-zero when any VM's command failed."""

from __future__ import annotations

import sys
import threading

from flwrazure import workers
from flwrazure.commands.logs import addresses, pick, route
from flwrazure.errors import FlwrazureError, UsageError
from flwrazure.workstation import state


def run(cluster: str, vm: str | None, command: list[str], all_vms: bool, out=None) -> int:
    """Returns the exit code to leave with (interactive: does not return, the ssh client takes over)."""
    import shlex

    out = out or sys.stdout
    st = state.load(cluster)
    if all_vms and vm:
        raise UsageError("--all runs on every VM: give no VM name with it.")
    if all_vms and not command:
        raise UsageError("--all needs a command: flwrazure ssh --all -- COMMAND")
    vms = pick(st, [] if all_vms else [vm or "server"])
    rows = addresses(st)
    known = state.cluster_dir(cluster) / "known_hosts"
    for v in vms:
        if rows[v.vm]["state"] != "running" or not route(rows, v.vm):
            raise FlwrazureError(f"VM {v.vm} is {rows[v.vm]['state']}: nothing to connect to"
                                 + (f" (`flwrazure resume --cluster {cluster}`)." if rows[v.vm]["state"] ==
                                    "deallocated" else "."))
    if not command:
        from flwrazure.remote import shell

        v = vms[0]
        ip, via = route(rows, v.vm)
        shell.interactive(ip, v.vm, st["admin_user"], st["ssh_private_key"], known, via)
        return 0  # not reached: the ssh client replaced this process
    text = command[0] if len(command) == 1 else shlex.join(command)
    width = max(len(v.vm) for v in vms)
    lock = threading.Lock()

    def one(v) -> int:
        from flwrazure.remote import shell, ssh

        def emit(line: str) -> None:
            with lock:
                out.write((f"{v.vm:<{width}} | {line}" if all_vms else line) + "\n")
                out.flush()

        try:
            ip, via = route(rows, v.vm)
            conn = ssh.wait(ip, v.vm, st["admin_user"], st["ssh_private_key"], known, timeout=60, via=via)
        except FlwrazureError as exc:
            emit(f"(flwrazure: {exc})")
            return 255
        with conn:
            return shell.run_streamed(conn, text, emit)

    with workers.pool(min(32, len(vms))) as pool:
        codes = list(pool.map(one, vms))
    if not all_vms:
        return codes[0]
    failed = [v.vm for v, c in zip(vms, codes, strict=True) if c != 0]
    if failed:
        sys.stderr.write(f"failed on {len(failed)} of {len(vms)} VM(s): {', '.join(failed)}\n")
    return 0 if not failed else 1
