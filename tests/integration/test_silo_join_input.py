"""`silo join` refuses bad input in one line (exit 2) before anything is created: no ARM write in the local
cloud's request log, no silo record, no connection to a --host machine (API-only local cloud, real CLI)."""

import datetime as dt
import json
import time

import pytest

from flwrazure.plan import silo
from flwrazure.workstation import certs
from tests.helpers.cloud import flwrazure
from tests.integration.test_bad_input import assert_one_line_exit_2

UNREACHABLE = "azureuser@192.0.2.1"  # TEST-NET-1: a join that tried to connect would hang here, not exit at once


@pytest.fixture
def material(tmp_path):
    crt, _ = certs.ensure_ca(tmp_path / "tls", "flower")
    other, _ = certs.ensure_ca(tmp_path / "other", "flower")
    key = tmp_path / "id_ed25519"
    from flwrazure.workstation import sshkeys

    sshkeys.generate(key, "silo-admin")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.csv").write_text("1,2\n")
    return {"ca": crt.read_text(), "other_ca": other.read_text(), "key": str(key), "data": str(tmp_path / "data")}


def write_invitation(path, material, **over):
    now = dt.datetime.now(dt.timezone.utc)
    base = dict(cluster="flower", cluster_id="0b9a3c1e-1111-4222-8333-944455556666", silo="hospital-a",
                address="198.18.0.10", fleet_port=8000, ca_certificate=material["ca"], flwr_version="1.42.0",
                expires=silo.iso(now + dt.timedelta(days=7)), token=silo.new_token())
    inv = silo.Invitation(**{**base, **over})
    path.write_text(silo.dumps(inv))
    return inv


def nothing_created(cloud, home, since):
    assert cloud.writes(since) == []
    assert list(cloud.resources.resource_groups.list()) == []
    assert not list((home / "silos").glob("*/silo.json")) if (home / "silos").exists() else True


def test_join_refuses_bad_invitations_and_a_changed_ca_before_creating_anything(product_cloud, home, tmp_path,
                                                                                material):
    since = time.time()
    inv_file = tmp_path / "inv.json"
    inv = write_invitation(inv_file, material)
    right = silo.fingerprint(material["ca"])
    data = ("--data", material["data"])
    # expired
    old = tmp_path / "old.json"
    write_invitation(old, material, expires=silo.iso(dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=1)))
    assert_one_line_exit_2(flwrazure(home, "silo", "join", str(old), "--cloud", "local", *data,
                                     "--ca-fingerprint", right), "expired at")
    # malformed: not JSON, another kind of file, a changed port, no such file
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert_one_line_exit_2(flwrazure(home, "silo", "join", str(bad), "--cloud", "local", *data), "is not JSON")
    bad.write_text(json.dumps({**json.loads(inv_file.read_text()), "kind": "flwrazure-silo-join-request"}))
    assert_one_line_exit_2(flwrazure(home, "silo", "join", str(bad), "--cloud", "local", *data),
                           "has kind 'flwrazure-silo-join-request'")
    assert_one_line_exit_2(flwrazure(home, "silo", "join", str(tmp_path / "nope.json"), "--cloud", "local", *data),
                           "cannot be read")
    # the CA was swapped (the fingerprint sent by another channel is the real CA's): refused, with --cloud and --host
    tampered = tmp_path / "tampered.json"
    write_invitation(tampered, material, ca_certificate=material["other_ca"], token=inv.token)
    assert_one_line_exit_2(flwrazure(home, "silo", "join", str(tampered), "--cloud", "local", *data,
                                     "--ca-fingerprint", right), f"not {right} as the operator said")
    began = time.monotonic()
    assert_one_line_exit_2(flwrazure(home, "silo", "join", str(tampered), "--host", UNREACHABLE, "--ssh-key",
                                     material["key"], *data, "--ca-fingerprint", right.replace(":", "").lower()),
                           "nothing was created")
    assert time.monotonic() - began < 20  # it never tried the machine
    # no terminal, no --ca-fingerprint: refused, naming the flag and the fingerprint to compare
    result = flwrazure(home, "silo", "join", str(inv_file), "--host", UNREACHABLE, "--ssh-key", material["key"],
                       *data)
    assert_one_line_exit_2(result, "--ca-fingerprint")
    assert right in result.stderr
    nothing_created(product_cloud, home, since)


def test_join_refuses_bad_options_before_creating_anything(product_cloud, home, tmp_path, material):
    since = time.time()
    inv_file = tmp_path / "inv.json"
    write_invitation(inv_file, material)
    fp = ("--ca-fingerprint", silo.fingerprint(material["ca"]))
    key = ("--ssh-key", material["key"])
    data = ("--data", material["data"])
    join = ("silo", "join", str(inv_file), *fp)
    for host, needle in (("nobody", "expected USER@ADDR"), ("me@bad_host!", "neither an IP address nor a DNS name")):
        assert_one_line_exit_2(flwrazure(home, *join, "--host", host, *key, *data), needle)
    assert_one_line_exit_2(flwrazure(home, *join, "--host", UNREACHABLE, *data), "pass --ssh-key KEY")
    assert_one_line_exit_2(flwrazure(home, *join, "--host", UNREACHABLE, "--ssh-key", str(tmp_path / "nokey"),
                                     *data), "--ssh-key")
    assert_one_line_exit_2(flwrazure(home, *join, *data), "--cloud azure|local")
    assert_one_line_exit_2(flwrazure(home, *join, "--cloud", "local", "--host", UNREACHABLE, *key, *data),
                           "--cloud azure|local")
    assert_one_line_exit_2(flwrazure(home, *join, "--cloud", "local", *key, *data), "--ssh-key goes with --host")
    assert_one_line_exit_2(flwrazure(home, *join, "--cloud", "local", "--ssh-source", "any", *data),
                           "open the silo VM's SSH to everyone")
    assert_one_line_exit_2(flwrazure(home, *join, "--host", UNREACHABLE, *key, "--ssh-source", "1.2.3.4", *data),
                           "--ssh-source goes with --cloud")
    # the data: a missing directory, none at all, both ways at once, a path that may not go into a unit
    assert_one_line_exit_2(flwrazure(home, *join, "--host", UNREACHABLE, *key, "--data", str(tmp_path / "nodata")),
                           "no such directory")
    assert_one_line_exit_2(flwrazure(home, *join, "--host", UNREACHABLE, *key), "exactly one of --data DIR")
    assert_one_line_exit_2(flwrazure(home, *join, "--host", UNREACHABLE, *key, "--data-path", "/srv/$(reboot)"),
                           "--data-path")
    assert_one_line_exit_2(flwrazure(home, *join, "--host", UNREACHABLE, *key, *data, "--egress", "127.0.0.1"),
                           "cannot be a machine's address")
    assert_one_line_exit_2(flwrazure(home, "silo", "join", "--resume"), "has joined no such silo")
    assert_one_line_exit_2(flwrazure(home, *join, "--resume", "--host", UNREACHABLE, *key, *data),
                           "has not joined silo hospital-a")
    assert_one_line_exit_2(flwrazure(home, "silo", "leave", "--yes"), "has joined no such silo")
    nothing_created(product_cloud, home, since)


def _silo_record(home, cloud, silo_id: str) -> None:
    folder = home / "silos" / "flower-b"
    folder.mkdir(parents=True)
    (folder / "silo.json").write_text(json.dumps({
        "cluster": "flower", "cluster_id": "0b9a3c1e-1111-4222-8333-944455556666", "silo": "b", "silo_id": silo_id,
        "mode": "cloud", "cloud": "local", "subscription": cloud.sub, "location": "eastus",
        "resource_group": "flower-b-silo-rg", "vm": "flower-b-supernode", "user": "azureuser", "status": "joined"}))


def test_leave_deletes_only_the_group_join_made(product_cloud, home):
    """leave with --cloud: the group carrying this silo's identity goes (and the record with it); a group of that
    name without it is refused and kept. No terminal and no --yes: refused first."""
    from flwrazure.plan import names

    mine = "5f0c1d2e-aaaa-4bbb-8ccc-0123456789ab"
    tags = {**names.tags("flower-b", "silo", mine), names.TAG_CREATED_GROUP: "flower-b"}
    product_cloud.resources.resource_groups.create_or_update("flower-b-silo-rg", {"location": "eastus",
                                                                                   "tags": tags})
    product_cloud.network.network_security_groups.begin_create_or_update(
        "flower-b-silo-rg", "flower-b-nsg", {"location": "eastus", "tags": tags}).result()
    _silo_record(home, product_cloud, "another-silo-id")
    since = time.time()
    assert_one_line_exit_2(flwrazure(home, "silo", "leave"), "pass --yes")
    assert_one_line_exit_2(flwrazure(home, "silo", "leave", "--yes"), "does not carry this silo's identity")
    assert product_cloud.writes(since) == [] and (home / "silos" / "flower-b" / "silo.json").exists()
    rec = json.loads((home / "silos" / "flower-b" / "silo.json").read_text())
    (home / "silos" / "flower-b" / "silo.json").write_text(json.dumps({**rec, "silo_id": mine}))
    result = flwrazure(home, "silo", "leave", "--yes", "--json")
    assert result.returncode == 0, result.stderr
    assert "flower-b-silo-rg" in json.loads(result.stdout)["removed"][0]
    assert [g.name for g in product_cloud.resources.resource_groups.list()] == []
    assert not (home / "silos" / "flower-b").exists()
