"""Reading a Flower service's log on a VM over SSH: its recent lines, then what was added since (a cursor per
VM: journald's cursor, or a byte offset in the restart loop's file)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from flwrazure.plan import logs as plan
from flwrazure.plan.services import Layout
from flwrazure.remote.daemons import SYSTEMD


@dataclass
class Cursor:
    kind: str  # systemd | loop
    position: str | int | None = None  # journald cursor / byte offset
    last_ts: float | None = None


def _bounded(conn, command: str, timeout: float):
    """conn.run, but never longer than `timeout`: when a VM goes away mid-session, opening a channel on the dead
    connection could wait for TCP to give up (minutes); closing the connection releases it at once."""
    import threading

    box: dict = {}

    def work() -> None:
        try:
            box["result"] = conn.run(command, hide=True, warn=True, in_stream=False, timeout=timeout)
        except BaseException as exc:  # handed to the caller
            box["error"] = exc

    worker = threading.Thread(target=work, daemon=True, name="flwrazure-logs")
    worker.start()
    worker.join(timeout + 2)
    if worker.is_alive():
        conn.close()
        raise TimeoutError(f"no answer in {timeout:.0f} s")
    if "error" in box:
        raise box["error"]
    return box["result"]


def _run(conn, command: str, timeout: float) -> str:
    return _bounded(conn, command, timeout).stdout


def recent(conn, vm: str, unit: str, kind: str, layout: Layout, lines: int | None, since_s: int | None,
           timeout: float = 30) -> tuple[list[plan.Line], Cursor]:
    if kind == SYSTEMD:
        out = _run(conn, plan.journal_command(unit, lines, since_s), timeout)
        got, cursor = plan.parse_journal(vm, out)
        last = next((ln.ts for ln in reversed(got) if ln.ts is not None), None)
        return got, Cursor(kind, cursor, last if last is not None else time.time())
    out = _run(conn, plan.file_command(layout.path(f"{unit}.log"), lines, None), timeout)
    got, size = plan.parse_file(vm, out, tail_mode=True, now=None)
    return got, Cursor(kind, size)


def more(conn, vm: str, unit: str, layout: Layout, cursor: Cursor, timeout: float = 15) -> list[plan.Line]:
    """Lines added after the cursor (which moves on); raises when the VM does not answer."""
    if cursor.kind == SYSTEMD:
        if cursor.position:
            cmd = plan.journal_command(unit, None, None, str(cursor.position), cursor.last_ts)
        else:  # nothing seen yet: everything after the moment we started
            cmd = plan.journal_command(unit, None, None, None) if cursor.last_ts is None else \
                f"journalctl -u {unit} -o json --no-pager -q --since=@{cursor.last_ts:.6f}"
        result = _bounded(conn, cmd, timeout)
        if result.failed and not result.stdout:
            raise ConnectionError(result.stderr.strip()[:200] or f"exit {result.exited}")
        got, pos = plan.parse_journal(vm, result.stdout, str(cursor.position) if cursor.position else None)
        if pos:
            cursor.position = pos
        stamped = [ln.ts for ln in got if ln.ts is not None]
        if stamped:
            cursor.last_ts = stamped[-1]
        return got
    out = _run(conn, plan.file_command(layout.path(f"{unit}.log"), None, int(cursor.position or 0)), timeout)
    got, cursor.position = plan.parse_file(vm, out, tail_mode=False, now=time.time())
    return got
