"""The operator's checks of the cross-silo e2e (tests/e2e/test_silo_e2e.py), kept apart from the silo's side so
both engineers' edits to that test stay small: what `admit`, `silo list`, `status`, `doctor` and `remove` must show
once the silos' SuperNodes are online, and after one is removed."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.e2e.test_flower_e2e import flwrazure, ok
from tests.helpers import contract


def fleet_sources(op: Path) -> tuple[dict, set[str]]:
    """`status --json` and the Fleet rule's sources in it."""
    status = json.loads(ok(flwrazure(op, "status", "--json")).stdout)
    fleet = [r for r in status["rules"] if r["name"] == "flwrazure-fleet"]
    assert len(fleet) == 1, status["rules"]
    return status, set(fleet[0]["sources"])


def check_admitted(op: Path, tmp_path: Path, joined: dict[str, dict], node_ids: dict[str, str]) -> None:
    """After admit and the silos online: a re-run admit changes nothing; the Fleet rule admits exactly the client
    VM and the silos' egress addresses; list, status and doctor agree that both are online, with the node ids the
    silos' own side saw."""
    before = time.monotonic()
    for silo in joined:
        again = json.loads(ok(flwrazure(op, "silo", "admit", str(tmp_path / f"{silo}.join-request.json"),
                                        "--cluster", "flower", "--json")).stdout)
        assert contract.check("silo admit", again) == [], contract.check("silo admit", again)
        assert again["already_admitted"] is True and again["node_id"] == str(node_ids[silo]), again
    status, sources = fleet_sources(op)
    # the client VMs: their public IPs, or (--private-clients) the subnet they dial the private address from
    client_ips = {status["network"]["subnet"]} if status["network"]["layout"] == "private-clients" else \
        {v["public_ip"] for v in status["vms"] if v["role"] == "client"}
    egress = {a for j in joined.values() for a in j["egress"]}
    assert sources == client_ips | egress, (sources, client_ips, egress)
    assert {r["silo"]: (r["state"], r["node_id"]) for r in status["silos"]} == \
        {s: ("online", str(node_ids[s])) for s in joined}, status["silos"]
    ssh = [r for r in status["rules"] if r["name"] == "flwrazure-ssh"][0]
    assert not egress & set(ssh["sources"]), ssh  # a silo gets no SSH
    listed = json.loads(ok(flwrazure(op, "silo", "list", "--cluster", "flower", "--json")).stdout)["silos"]
    assert all(r["last_seen"] for r in listed), listed
    doctor = json.loads(flwrazure(op, "doctor", "--json").stdout)
    check = [c for c in doctor["checks"] if c["name"] == "silos online"]
    assert check and check[0]["ok"] is True, doctor["checks"]
    print(f"\noperator checks after admit: {time.monotonic() - before:.1f} s")


def check_removed(op: Path, removed: str, egress: list[str], kept: list[str]) -> None:
    """After `silo remove`: the Fleet rule no longer admits its address, the other silo's stays; the record says
    removed; a second remove is harmless."""
    _, sources = fleet_sources(op)
    assert not set(egress) & sources and set(kept) <= sources, (sources, egress, kept)
    listed = json.loads(ok(flwrazure(op, "silo", "list", "--cluster", "flower", "--json")).stdout)["silos"]
    row = {r["silo"]: r for r in listed}[removed]
    # the SuperLink refuses its key from now on (Flower's own record), and the network no longer lets it in
    assert (row["state"], row["superlink"]) == ("removed", "unregistered"), listed
    again = json.loads(ok(flwrazure(op, "silo", "remove", removed, "--cluster", "flower", "--yes", "--json")).stdout)
    assert again["was"] == "removed", again
