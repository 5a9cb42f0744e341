"""The operator's side of cross-silo federations on the API-only local cloud (issue 24): invite's bad input and
refusals, admit's refusals (each one line, exit 2, nothing written to the cloud, the record unchanged), and the
Fleet rule keeping admitted silos' addresses through open-ports. Registering keys and online states need the
SuperLink on a sandbox VM: tests/e2e/test_silo_e2e.py."""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
import subprocess
import time

import pytest

from flwrazure.plan import silo
from flwrazure.workstation import certs
from tests.helpers import contract
from tests.helpers.cloud import flwrazure
from tests.integration.test_bad_input import assert_one_line_exit_2

EGRESS = "198.18.7.7"


def ok(result):
    assert result.returncode == 0, result.stderr + result.stdout
    return result


def documented(command: str, result) -> dict:
    """A silo command's --json output (exit 0), checked against its table in docs/json.md."""
    return contract.documented(command, ok(result).stdout)


def record(home, cluster="flower") -> dict:
    return json.loads((home / "clusters" / cluster / "state.json").read_text())


def write_record(home, data, cluster="flower") -> None:
    (home / "clusters" / cluster / "state.json").write_text(json.dumps(data))


def started(home, secure: bool = True, cluster: str = "flower") -> None:
    """What `start` records and writes on the workstation (the API-only cloud has no VM to start Flower on)."""
    st = record(home, cluster)
    server_ip = json.loads(ok(flwrazure(home, "status", "--cluster", cluster, "--json")).stdout)["vms"][0]["public_ip"]
    if secure:
        certs.ensure_ca(home / "clusters" / cluster / "tls", cluster)
    write_record(home, {**st, "started": True, "secure": secure, "superlink_address": f"{server_ip}:8000"}, cluster)


@pytest.fixture
def cluster(product_cloud, home):
    ok(flwrazure(home, "create-cluster", "--cloud", "local", "--clients", "1", "--ssh-source", "203.0.113.9"))
    ok(flwrazure(home, "open-ports", "--source", "198.51.100.7"))
    return product_cloud


def fleet_sources(cloud) -> list[str]:
    rule = cloud.network.security_rules.get("flower-rg", "flower-nsg", "flwrazure-fleet")
    return sorted(rule.source_address_prefixes or [rule.source_address_prefix])


def test_invite(cluster, home, tmp_path):
    cloud = cluster
    # not started, then started --insecure: refused, no file
    assert_one_line_exit_2(flwrazure(home, "silo", "invite", "lab", "--cluster", "flower", cwd=tmp_path),
                           "has not been started")
    started(home, secure=False)
    result = flwrazure(home, "silo", "invite", "lab", "--cluster", "flower", cwd=tmp_path)
    assert_one_line_exit_2(result, "was started with --insecure")
    assert "no TLS, no SuperNode authentication" in result.stderr
    started(home)
    for args, needle in [(("Lab",), "NAME 'Lab': use 1-20 lowercase"), (("lab", "--expires", "7"), "--expires '7'"),
                         (("lab", "--expires", "100d"), "10 minutes to 90 days"),
                         (("lab", "--cluster", "Nope"), "--cluster 'Nope'"),
                         (("lab", "-o", str(tmp_path / "no" / "x.json")), "does not exist")]:
        cl = () if "--cluster" in args else ("--cluster", "flower")
        assert_one_line_exit_2(flwrazure(home, "silo", "invite", *args, *cl, cwd=tmp_path), needle)
    assert list(tmp_path.glob("*.json")) == [] and "silos" not in record(home)
    none = documented("silo list", flwrazure(home, "silo", "list", "--cluster", "flower", "--json"))
    assert none == {"cluster": "flower", "silos": [], "next": ["flwrazure silo invite <name> --cluster flower"]}

    since = time.time()
    out = documented("silo invite", flwrazure(home, "silo", "invite", "lab", "--cluster", "flower", "--json",
                                              cwd=tmp_path))
    assert out["next"] == ["flwrazure silo admit lab.join-request.json --cluster flower"]
    assert cloud.writes(since) == []  # an invitation changes nothing in the cloud
    path = tmp_path / "lab.invitation.json"
    assert out["invitation"] == "lab.invitation.json" and path.exists()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    inv = silo.parse_invitation(json.loads(path.read_text()))
    ca = home / "clusters" / "flower" / "tls" / "ca.crt"
    openssl = subprocess.run(["openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in", str(ca)],
                             capture_output=True, text=True, check=True).stdout.strip().split("=", 1)[1]
    assert out["ca_fingerprint"] == openssl
    st = record(home)
    assert (inv.cluster, inv.cluster_id, inv.silo, inv.fleet_port, inv.flwr_version) == \
        ("flower", st["cluster_id"], "lab", 8000, st["flwr_version"])
    assert inv.address == st["superlink_address"].split(":")[0] and inv.ca_certificate == ca.read_text()
    expires = silo.parse_time(inv.expires, "expires") - dt.datetime.now(dt.timezone.utc)
    assert dt.timedelta(days=6, hours=23) < expires <= dt.timedelta(days=7)
    # the operator keeps the token's digest, never the token; nothing of the operator's secrets is in the file
    assert inv.token not in json.dumps(st)
    assert st["silos"]["lab"]["token_sha256"] == silo.token_digest(inv.token)
    text = path.read_text()
    assert "PRIVATE KEY" not in text and "client_secret" not in text

    # another file is never overwritten; an earlier invitation of the same silo is (its token is void anyway)
    other = tmp_path / "notes.json"
    other.write_text("{}")
    assert_one_line_exit_2(flwrazure(home, "silo", "invite", "lab", "--cluster", "flower", "-o", str(other)),
                           "is kept")
    assert other.read_text() == "{}"
    human = ok(flwrazure(home, "silo", "invite", "lab", "--cluster", "flower", "--expires", "2h", cwd=tmp_path))
    assert openssl in human.stdout + human.stderr and "shares one port" in human.stderr
    assert silo.parse_invitation(json.loads(path.read_text())).token != inv.token

    listed = documented("silo list", flwrazure(home, "silo", "list", "--cluster", "flower", "--json"))
    assert [(r["silo"], r["state"], r["node_id"]) for r in listed["silos"]] == [("lab", "invited", None)]
    assert listed["next"] == []
    status = json.loads(ok(flwrazure(home, "status", "--json")).stdout)
    assert [(r["silo"], r["state"]) for r in status["silos"]] == [("lab", "invited")]
    # remove: no terminal and no --yes is refused before anything (as scale and teardown); an unknown silo too
    assert_one_line_exit_2(flwrazure(home, "silo", "remove", "lab", "--cluster", "flower"), "pass --yes")
    assert_one_line_exit_2(flwrazure(home, "silo", "remove", "lab-9", "--cluster", "flower", "--yes"),
                           "has no silo named lab-9 (silos: lab)")
    # with --json, a refusal is the error object on stdout (docs/json.md)
    refused = flwrazure(home, "silo", "remove", "lab-9", "--cluster", "flower", "--yes", "--json")
    assert refused.returncode == 2 and json.loads(refused.stdout)["error"]["code"] == "usage"
    assert record(home)["silos"]["lab"]["state"] == "invited"


def request_for(invitation: silo.Invitation, key: str, **over) -> dict:
    req = silo.JoinRequest(invitation.cluster, invitation.cluster_id, invitation.silo, invitation.token, key,
                           (EGRESS,), invitation.flwr_version)
    return {**req.to_dict(), **over}


def test_admit_refusals_then_the_fleet_rule(cluster, home, tmp_path):
    """One cluster for both (a cluster costs ~6 s to create): admit's refusals, then open-ports with silos."""
    admit_refusals(cluster, home, tmp_path)
    open_ports_keeps_admitted_silos(cluster, home)


def admit_refusals(cluster, home, tmp_path):
    cloud = cluster
    started(home)
    ok(flwrazure(home, "silo", "invite", "lab", "--cluster", "flower", "-o", str(tmp_path / "lab.json")))
    inv = silo.parse_invitation(json.loads((tmp_path / "lab.json").read_text()))
    _, key = certs.ensure_supernode_key(tmp_path / "silo.key")  # the silo's key: made on its side in real use
    rule_before = fleet_sources(cloud)

    def refused(data: dict | str, needle: str, prepare=None) -> None:
        st = record(home)
        if prepare:
            write_record(home, prepare(json.loads(json.dumps(st))))
        before = (home / "clusters" / "flower" / "state.json").read_text()
        path = tmp_path / "req.json"
        path.write_text(data if isinstance(data, str) else json.dumps(data))
        since = time.time()
        assert_one_line_exit_2(flwrazure(home, "silo", "admit", str(path), "--cluster", "flower"), needle)
        assert cloud.writes(since) == []  # the NSG untouched
        assert (home / "clusters" / "flower" / "state.json").read_text() == before  # nothing recorded
        write_record(home, st)

    def rec_set(**values):
        def change(st):
            st["silos"]["lab"].update(values)
            return st
        return change

    refused("not json", "is not JSON")
    refused(request_for(inv, key, token=silo.new_token()), "token does not match")
    tampered = inv.token[:-1] + ("A" if inv.token[-1] != "A" else "B")
    refused(request_for(inv, key, token=tampered), "token does not match")
    refused(request_for(inv, key, cluster_id="0c0ffee0-0000-4000-8000-000000000000"), "not cluster flower")
    refused(request_for(inv, key, cluster="other"), "is for cluster other")
    refused(request_for(inv, key, flwr_version="1.41.0"), "versions must be equal")
    refused(request_for(inv, key, silo="lab-2"), "has not invited a silo named lab-2")
    refused(request_for(inv, key), "expired at", rec_set(expires="2020-01-01T00:00:00Z"))
    refused(request_for(inv, key), "was used already",
            rec_set(state="admitted", used=True, node_id="5", public_key=key, egress=["198.18.9.9"]))
    refused(request_for(inv, key, egress=["10.0.0.4/8"]), "not an IPv4 address")
    refused(request_for(inv, key, public_key="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG"), "OpenSSH ECDSA")
    # an admitted silo's key offered by another silo
    _, other_key = certs.ensure_supernode_key(tmp_path / "other.key")
    refused(request_for(inv, other_key), "the public key silo twin was admitted with",
            lambda st: {**st, "silos": {**st["silos"], "twin": {
                "silo": "twin", "state": "admitted", "used": True, "node_id": "6", "public_key": other_key,
                "egress": ["198.18.9.9"], "expires": "2099-01-01T00:00:00Z", "token_sha256": "x"}}})
    # an insecure cluster admits nobody
    refused(request_for(inv, key), "was started with --insecure", lambda st: {**st, "secure": False})
    assert fleet_sources(cloud) == rule_before
    # removing an invited silo voids its invitation: its request is refused from then on
    gone = documented("silo remove", flwrazure(home, "silo", "remove", "lab", "--cluster", "flower", "--yes",
                                               "--json"))
    assert (gone["was"], gone["rules"], gone["next"]) == ("invited", None, [])
    assert record(home)["silos"]["lab"]["state"] == "removed"
    refused(request_for(inv, key), "was removed")


def open_ports_keeps_admitted_silos(cluster, home):
    """open-ports (and scale, which runs it) converges the Fleet rule to the client VMs and the admitted silos;
    before silos existed it narrowed the rule back to the client VMs."""
    cloud = cluster
    clients = fleet_sources(cloud)
    st = record(home)
    admitted = {"silo": "lab", "state": "admitted", "used": True, "node_id": "5", "egress": [EGRESS, "198.18.7.8"]}
    write_record(home, {**st, "silos": {"lab": admitted, "gone": {**admitted, "silo": "gone", "state": "removed",
                                                                  "egress": ["198.18.7.9"]}}})
    ok(flwrazure(home, "open-ports", "--source", "198.51.100.7"))
    assert fleet_sources(cloud) == sorted([*clients, EGRESS, "198.18.7.8"])
    write_record(home, {**st, "silos": {"lab": {**admitted, "state": "removed"}}})
    ok(flwrazure(home, "open-ports", "--source", "198.51.100.7"))
    assert fleet_sources(cloud) == clients
    # teardown names the silos still admitted (their SuperNodes lose the SuperLink); their records go with it
    write_record(home, {**st, "silos": {"lab": admitted}})
    down = json.loads(ok(flwrazure(home, "teardown", "--yes", "--json")).stdout)
    assert down["admitted_silos"] == ["lab"] and not (home / "clusters" / "flower" / "state.json").exists()


def test_silo_help_loads_no_azure_sdk(home):
    """`silo --help` lists the operator's commands without loading the Azure SDK."""
    env = {**os.environ, "FLWRAZURE_HOME": str(home)}
    out = subprocess.run(["python3", "-X", "importtime", "-m", "flwrazure", "silo", "--help"], env=env,
                         capture_output=True, text=True, check=True)
    assert all(c in out.stdout for c in ("invite", "admit", "list", "remove"))
    assert "azure.core" not in out.stderr
