"""What a command interrupted by Ctrl-C leaves behind, said in one line with the command that finishes it and the
one that removes it (pure: the facts come from the cluster's record and what the command knew at that moment)."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

CREATING = ("create-cluster", "up", "scale")  # commands that may leave new VMs behind
READ_ONLY = ("status", "list", "logs", "doctor")
_CREDENTIALS = re.compile(r"(?<=://)[^/@\s]+@")  # user:password@ in a URL (an --index-url's token)


@dataclass
class Left:
    """What exists of the cluster now: VMs (exact, or at most that many), public IPs, whether its group does."""

    cluster: str
    resource_group: str
    vms: int = 0
    ips: int = 0
    group: bool = False
    at_most: bool = False  # teardown, a shrinking scale: some of the recorded VMs may be gone already


def rerun(args: list[str]) -> str:
    """The command line as it was typed (credentials in URLs masked): what finishes an interrupted command."""
    return " ".join(["flwrazure", *(shlex.quote(_CREDENTIALS.sub("***@", a)) for a in args)])


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


def left_text(command: str, left: Left | None) -> str:
    """'3 VMs exist in flower-rg and are billed', 'nothing was created', …"""
    if left is None:
        return "nothing was created" if command in CREATING else "nothing was changed"
    rg = left.resource_group
    if command == "teardown":
        return (f"up to {_count(left.vms, 'VM')} and the rest of cluster {left.cluster} may remain in {rg}, billed "
                "until they are deleted")
    if command == "pause":
        return f"some of the {_count(left.vms, 'VM')} of cluster {left.cluster} in {rg} may still run and be billed"
    if left.vms:
        one = left.vms == 1 and not left.at_most
        return (f"{'up to ' if left.at_most else ''}{_count(left.vms, 'VM')} {'exists' if one else 'exist'} in {rg} "
                f"and {'is' if one else 'are'} billed")
    if left.ips:
        return f"{_count(left.ips, 'public IP')} (no VM yet) exist in {rg} and are billed"
    if left.group:
        return f"resource group {rg} exists, with nothing billed in it yet"
    return "nothing was created"


def line(command: str, left: Left | None, again: str) -> str:
    """The one line printed on Ctrl-C (without its 'Interrupted: ' prefix)."""
    what = left_text(command, left)
    if command in READ_ONLY:
        return f"{what}."
    if left is None or what == "nothing was created":
        return f"{what}; re-run `{again}` to do it."
    if command == "teardown":
        return f"{what}; re-run `{again}` to finish deleting them."
    if command == "pause":
        return (f"{what}; re-run `{again}` to finish, or `flwrazure resume --cluster {left.cluster}` to run them "
                "again.")
    return f"{what}; re-run `{again}` to finish, or `flwrazure teardown --cluster {left.cluster}` to remove it all."
