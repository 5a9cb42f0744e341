"""logs, decided without I/O: durations, the remote commands that read a Flower service's log (journald, or the
restart loop's file), parsing their answers, and merging many VMs' lines in time order with a VM prefix.

journald lines carry their own time (__REALTIME_TIMESTAMP). The restart loop's file has none: its lines keep
their order and take the time of the line before them from the same VM (or, when followed, the moment they
were read)."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass

from flwrazure.errors import UsageError

_SPAN = re.compile(r"(\d+)\s*(d|h|m|s)", re.I)
UNIT = {"d": 86400, "h": 3600, "m": 60, "s": 1}
MAX_CHUNK = 4_000_000  # bytes of a loop log read per poll


def parse_duration(text: str, flag: str = "--since") -> int:
    """'90s', '10m', '2h', '1d', '1h30m' or a number of seconds -> seconds."""
    value = (text or "").strip().lower().replace(" ", "")
    if value.isdigit():
        return int(value)
    parts = _SPAN.findall(value)
    if not value or not parts or "".join(f"{n}{u}" for n, u in parts) != value:
        raise UsageError(f"{flag} {text!r} is not a duration: use e.g. 90s, 10m, 2h, 1d or 1h30m.")
    return sum(int(n) * UNIT[u] for n, u in parts)


@dataclass(frozen=True)
class Line:
    vm: str
    ts: float | None  # seconds since the epoch, None when the source has no time
    text: str


# -- journald -------------------------------------------------------------------------------------------------
def journal_command(unit: str, lines: int | None, since_s: int | None, cursor: str | None = None,
                    after_ts: float | None = None) -> str:
    """`journalctl` for one unit as JSON: the last `lines`, or since `since_s` seconds ago, or from a cursor on
    (`--cursor` includes the cursor's own entry, which parse_journal drops: `--after-cursor` would skip one entry
    even when the journal no longer has the cursor's, e.g. a volatile journal after a reboot; and when journalctl
    fails on the cursor, from a time)."""
    base = f"journalctl -u {shlex.quote(unit)} -o json --no-pager -q"
    if cursor:
        cmd = f"{base} --cursor={shlex.quote(cursor)}"
        if after_ts is not None:
            cmd += f" || {base} --since=@{after_ts:.6f}"
        return cmd
    parts = [base]
    if since_s is not None:
        parts.append(f"--since=@$(( $(date +%s) - {int(since_s)} ))")
    if lines is not None:
        parts.append(f"-n {int(lines)}")
    elif since_s is None:
        parts.append("-n 10")
    return " ".join(parts)


def parse_journal(vm: str, out: str, seen: str | None = None) -> tuple[list[Line], str | None]:
    """journalctl -o json output -> lines and the last cursor; the entry at cursor `seen` (shown already) is
    left out."""
    lines, cursor = [], None
    for raw in out.splitlines():
        raw = raw.strip()
        if not raw.startswith("{"):
            continue
        try:
            entry = json.loads(raw)
        except ValueError:
            continue
        msg = entry.get("MESSAGE", "")
        if isinstance(msg, list):  # journald sends non-UTF-8 messages as byte arrays
            msg = bytes(b for b in msg if isinstance(b, int)).decode("utf-8", "replace")
        ts = entry.get("__REALTIME_TIMESTAMP")
        cursor = entry.get("__CURSOR", cursor)
        if seen is not None and entry.get("__CURSOR") == seen:
            continue
        for part in str(msg).splitlines() or [""]:
            lines.append(Line(vm, int(ts) / 1e6 if str(ts).isdigit() else None, part))
    return lines, cursor


# -- the restart loop's log file ------------------------------------------------------------------------------
def file_command(path: str, lines: int | None, offset: int | None) -> str:
    """The file's last `lines` (offset None), or what follows byte `offset` (from 0 if the file got shorter).
    The first output line is the byte offset the rest starts at."""
    q = shlex.quote(path)
    if offset is None:
        n = 10 if lines is None else int(lines)
        return f"s=$(stat -c %s {q} 2>/dev/null || echo 0); echo \"@$s\"; tail -n {n} {q} 2>/dev/null"
    return (f"s=$(stat -c %s {q} 2>/dev/null || echo 0); o={int(offset)}; [ \"$s\" -lt \"$o\" ] && o=0; "
            f"echo \"@$o\"; tail -c +$((o+1)) {q} 2>/dev/null | head -c {MAX_CHUNK}")


def parse_file(vm: str, out: str, tail_mode: bool, now: float | None) -> tuple[list[Line], int]:
    """Output of file_command -> complete lines (stamped `now`, or None) and the next offset."""
    head, _, body = out.partition("\n")
    start = int(head.lstrip("@")) if head.lstrip("@").isdigit() else 0
    if tail_mode:  # `start` is the file's size: the next poll continues at its end
        texts = body.splitlines()
        return [Line(vm, now, t) for t in texts], start
    complete, _, _partial = body.rpartition("\n")
    if not complete and not body.endswith("\n"):
        return [], start  # no complete line yet
    consumed = complete + "\n"
    return [Line(vm, now, t) for t in complete.split("\n")], start + len(consumed.encode())


# -- merging --------------------------------------------------------------------------------------------------
def merge(streams: dict[str, list[Line]]) -> list[Line]:
    """All VMs' lines in time order; a line without a time takes its predecessor's from the same VM (the first
    ones sort first); ties keep each VM's order and then the VMs' order."""
    keyed = []
    for rank, lines in enumerate(streams.values()):
        last = float("-inf")
        for i, line in enumerate(lines):
            if line.ts is not None:
                last = line.ts
            keyed.append(((last, rank, i), line))
    return [line for _, line in sorted(keyed, key=lambda kv: kv[0])]


def prefix(line: Line, width: int) -> str:
    return f"{line.vm:<{width}} | {line.text}"
