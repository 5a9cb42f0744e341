"""Ctrl-C: the line cli.main prints (exit 130) says what the interrupted command left and how to finish or remove
it. Built from what this process knows at that moment — the cluster the command holds (commands.exclusive), what
create-cluster has sent to the cloud so far, the cluster's local record — never from a cloud round trip, which
could hang after Ctrl-C."""

from __future__ import annotations

import time
from collections.abc import Callable

from flwrazure.plan import interrupt as plan

_now: dict = {"cluster": None, "command": None, "left": None, "args": None}


def typed(args: list[str]) -> None:
    """The command line as the user typed it (the CLI's arguments): re-running it finishes the command."""
    _now["args"] = list(args)


def working_on(cluster: str, command: str) -> None:
    """The cluster this command changes (the first one it holds: `up` holds one for all its steps)."""
    if _now["cluster"] is None:
        _now["cluster"], _now["command"] = cluster, command


def left_by(fn: Callable[[], plan.Left]) -> None:
    """What exists of the cluster, as the running command knows it (create-cluster: what it found and sent)."""
    _now["left"] = fn


def again(cluster: str) -> str:
    """The command that finishes what was interrupted: the one typed, as typed."""
    if _now["args"] is not None:
        return plan.rerun(_now["args"])
    return f"flwrazure {_now['command'] or 'create-cluster'} --cluster {cluster}"


def _from_record(cluster: str, command: str) -> plan.Left | None:
    """The recorded cluster's VMs; 'up to' that many when some may not exist (yet, or any more)."""
    from flwrazure.workstation import state

    if not state.exists(cluster):
        return None
    st = state.load(cluster)
    return plan.Left(cluster, st["resource_group"], vms=1 + int(st["clients"]), group=True,
                     at_most=command in ("scale", "teardown") or st.get("status", "created") != "created")


def line(command: str | None = None) -> str:
    """What to print after 'Interrupted: '."""
    cluster = _now["cluster"]
    command = _now["command"] or command or ""
    if cluster is None:
        if command in plan.READ_ONLY:
            return "nothing was changed."
        if command == "ssh":
            return "what the command started on the VMs may go on running there."
        return f"re-run `{plan.rerun(_now['args'])}` to finish." if _now["args"] is not None else "stopped."
    left = _now["left"]() if _now["left"] is not None else None
    return plan.line(command, left or _from_record(cluster, command), again(cluster))


def interrupted(command: str | None = None) -> str:
    """On Ctrl-C, once the command has let go: a create that had begun writing (its record says "creating") is
    marked interrupted in the record — `status` shows it with the command that finishes it, and the next
    create-cluster that completes clears it — and the line to print is returned."""
    from flwrazure.workstation import state

    text = line(command)
    cluster = _now["cluster"]
    if cluster is not None and _now["left"] is not None and state.exists(cluster):
        if state.load(cluster).get("status") == "creating":
            state.update(cluster, {"status": "interrupted", "interrupted": {
                "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "next": again(cluster)}})
    return text
