"""Flower's long-running processes on a VM: a systemd unit (enabled at boot) where the host runs systemd, else
the planned restart loop started detached with setsid (plus an @reboot crontab line where crontab exists)."""

from __future__ import annotations

import shlex

from flwrazure.plan.services import RESTART_MARK, Layout
from flwrazure.remote.ssh import output, put_text, read, run, succeeds

SYSTEMD, LOOP = "systemd", "loop"


def supervisor(conn) -> str:
    """systemd when it is the host's init (what sd_booted() checks), else the loop."""
    return SYSTEMD if succeeds(conn, "test -d /run/systemd/system") else LOOP


def stage(conn, name: str, kind: str, unit_text: str) -> bool | None:
    """Write the unit of a service that does not run yet ahead of starting it (the file and a daemon-reload, while
    something else is still awaited); what it returns goes to install's `staged`. None where nothing is written
    ahead: no systemd, or the service runs (a changed unit must then be written and restarted together: one
    written now and then not started, as when the wait fails, would look current to the next start)."""
    if kind != SYSTEMD:
        return None
    path, unit = f"/etc/systemd/system/{name}.service", shlex.quote(name)
    state, _, text = output(conn, f"systemctl is-active --quiet {unit} && echo active || echo idle; "
                                  f"cat {shlex.quote(path)} 2>/dev/null").partition("\n")
    if state.strip() == "active":
        return None
    return _write_unit(conn, path, unit_text, text)


def _write_unit(conn, path: str, unit_text: str, have: str) -> bool:
    changed = have != unit_text
    if changed:
        run(conn, f"printf %s {shlex.quote(unit_text)} | sudo -n tee {shlex.quote(path)} >/dev/null && "
                  "sudo -n systemctl daemon-reload")
    return changed


def install(conn, name: str, kind: str, layout: Layout, unit_text: str, loop_text: str,
            staged: bool | None = None) -> bool:
    """Install or update the service and make sure it runs; restarts it only when its definition changed.
    Returns True when it changed. staged: stage()'s answer for this very unit_text (then only the start is left)."""
    if kind == SYSTEMD:
        path, unit = f"/etc/systemd/system/{name}.service", shlex.quote(name)
        changed = _write_unit(conn, path, unit_text, read(conn, path)) if staged is None else staged
        run(conn, f"sudo -n systemctl enable {unit} >/dev/null 2>&1; "
                  f"sudo -n systemctl {'restart' if changed else 'start'} {unit}")
        return changed
    plain = layout.path(f"{name}.sh")
    changed = put_text(conn, loop_text, plain, "755")
    script, log = shlex.quote(plain), shlex.quote(layout.path(f"{name}.log"))
    running = state(conn, name, kind, layout) == "active"
    if running and changed:
        stop(conn, name, kind, layout)
    if changed or not running:
        run(conn, f"setsid nohup sh {script} >> {log} 2>&1 < /dev/null &")
    boot = f"@reboot setsid nohup sh {script} >> {log} 2>&1 < /dev/null &"
    run(conn, f"command -v crontab >/dev/null || exit 0; (crontab -l 2>/dev/null | grep -vF {shlex.quote(plain)};"
              f" echo {shlex.quote(boot)}) | crontab -")
    return changed


def stop(conn, name: str, kind: str, layout: Layout) -> None:
    if kind == SYSTEMD:
        run(conn, f"sudo -n systemctl stop {shlex.quote(name)}")
        return
    pid = shlex.quote(layout.path(f"{name}.pid"))
    run(conn, f"p=$(cat {pid} 2>/dev/null) && kill -- -$p 2>/dev/null; "
              f"for i in $(seq 50); do kill -0 -- -$p 2>/dev/null || exit 0; sleep 0.1; done; kill -9 -- -$p")


def restarts_command(name: str, kind: str, layout: Layout) -> str:
    """A shell command printing how often the service was restarted after failing."""
    if kind == SYSTEMD:
        return f"systemctl show -p NRestarts --value {shlex.quote(name)}"
    return f"grep -c '^{RESTART_MARK} ' {shlex.quote(layout.path(name + '.log'))}"


def restarts(conn, name: str, kind: str, layout: Layout) -> int:
    """How often the service was restarted after failing (a crash loop shows here long before a timeout)."""
    out = output(conn, restarts_command(name, kind, layout))
    return int(out.strip()) if out.strip().isdigit() else 0


def state(conn, name: str, kind: str, layout: Layout) -> str:
    """systemd's words: active, inactive, failed, ..."""
    if kind == SYSTEMD:
        return output(conn, f"systemctl is-active {shlex.quote(name)}").strip() or "unknown"
    # the PID must still be our loop: after a reboot (resume of a paused cluster) the file names a PID that may
    # now belong to any other process
    pid, script = shlex.quote(layout.path(f"{name}.pid")), layout.path(f"{name}.sh")
    return "active" if succeeds(conn, f"p=$(cat {pid} 2>/dev/null) && kill -0 $p 2>/dev/null && "
                                      f"grep -qaF {shlex.quote(script)} /proc/$p/cmdline") else "inactive"
