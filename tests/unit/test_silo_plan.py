"""plan/silo.py: the invitation and join-request formats and every check made on them (issue 24)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess

import pytest

from flwrazure.errors import UsageError
from flwrazure.plan import silo
from flwrazure.workstation import certs

NOW = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.timezone.utc)
CLUSTER_ID = "2f1c6a3e-0d5b-4c1e-9f7a-1b2c3d4e5f60"


@pytest.fixture(scope="module")
def material(tmp_path_factory):
    d = tmp_path_factory.mktemp("silo")
    crt, _ = certs.ensure_ca(d / "tls", "flower")
    _, pub = certs.ensure_supernode_key(d / "node.key")
    _, other = certs.ensure_supernode_key(d / "other.key")
    return {"ca": crt.read_text(), "ca_path": crt, "pub": pub, "other_pub": other}


def invitation(material, **over) -> silo.Invitation:
    base = dict(cluster="flower", cluster_id=CLUSTER_ID, silo="hospital-a", address="198.18.0.10", fleet_port=8000,
                ca_certificate=material["ca"], flwr_version="1.42.0",
                expires=silo.iso(NOW + dt.timedelta(days=7)), token=silo.new_token())
    return silo.Invitation(**{**base, **over})


def request(material, inv: silo.Invitation, **over) -> silo.JoinRequest:
    base = dict(cluster=inv.cluster, cluster_id=inv.cluster_id, silo=inv.silo, token=inv.token,
                public_key=material["pub"], egress=("198.18.0.20",), flwr_version=inv.flwr_version)
    return silo.JoinRequest(**{**base, **over})


def test_invitation_round_trip_and_nothing_else(material):
    inv = invitation(material)
    data = json.loads(silo.dumps(inv))
    assert set(data) == silo.INVITATION_KEYS
    assert data["kind"] == "flwrazure-silo-invitation" and data["version"] == 1
    assert data["superlink"] == {"address": "198.18.0.10", "fleet_port": 8000}
    assert silo.parse_invitation(data) == inv
    assert inv.superlink == "198.18.0.10:8000"


def test_request_round_trip(material):
    inv = invitation(material)
    req = request(material, inv, egress=("198.18.0.21", "198.18.0.3"))
    data = json.loads(silo.dumps(req))
    assert set(data) == silo.REQUEST_KEYS and data["kind"] == "flwrazure-silo-join-request"
    parsed = silo.parse_request(data)
    assert parsed.egress == ("198.18.0.3", "198.18.0.21")  # sorted as addresses, not as text
    assert parsed.public_key == material["pub"]


def test_fingerprint_is_what_openssl_prints(material):
    out = subprocess.run(["openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in", str(material["ca_path"])],
                         capture_output=True, text=True, check=True).stdout
    assert silo.fingerprint(material["ca"]) == out.strip().split("=", 1)[1]


def test_fingerprint_check(material):
    inv = invitation(material)
    fp = silo.fingerprint(material["ca"])
    silo.check_fingerprint(inv, fp)
    silo.check_fingerprint(inv, fp.replace(":", "").lower())  # as typed from a call
    other = certs.ensure_ca(material["ca_path"].parent.parent / "other", "flower")[0].read_text()
    with pytest.raises(UsageError, match="not .* as the operator said"):
        silo.check_fingerprint(invitation(material, ca_certificate=other), fp)
    with pytest.raises(UsageError, match="32 hex byte pairs"):
        silo.check_fingerprint(inv, "AB:CD")


@pytest.mark.parametrize("text,seconds", [("30m", 1800), ("12h", 43200), ("7d", 604800), ("2W", 1209600),
                                          (" 1d ", 86400)])
def test_duration(text, seconds):
    assert silo.parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text,msg", [("7", "unit"), ("7y", "unit"), ("-1d", "unit"), ("", "unit"),
                                      ("5m", "10 minutes to 90 days"), ("91d", "10 minutes to 90 days"),
                                      ("1d\n", None)])
def test_bad_duration(text, msg):
    if msg is None:  # a trailing newline is whitespace around a whole value: accepted as 1d
        assert silo.parse_duration(text).days == 1
        return
    with pytest.raises(UsageError, match=msg):
        silo.parse_duration(text, "--expires")


@pytest.mark.parametrize("name,ok", [("hospital-a", True), ("a", True), ("Hospital", False), ("-a", False),
                                     ("a-", False), ("a" * 21, False), ("a b", False), ("a\n", False),
                                     ("a/../b", False)])
def test_silo_names(name, ok):
    if ok:
        assert silo.silo_name(name) == name
    else:
        with pytest.raises(UsageError, match="lowercase letters"):
            silo.silo_name(name)


def _bad_invitation(material, change) -> str:
    data = json.loads(silo.dumps(invitation(material)))
    change(data)
    with pytest.raises(UsageError) as err:
        silo.parse_invitation(data)
    msg = str(err.value)
    assert "\n" not in msg
    return msg


def test_invitation_defects(material):
    def setv(key, value):
        return lambda d: d.__setitem__(key, value)

    assert "kind" in _bad_invitation(material, setv("kind", "flwrazure-silo-join-request"))
    assert "format version 2" in _bad_invitation(material, setv("version", 2))
    assert "format version True" in _bad_invitation(material, setv("version", True))
    assert "lacks token" in _bad_invitation(material, lambda d: d.pop("token"))
    assert "unexpected key(s) ssh_key" in _bad_invitation(material, setv("ssh_key", "x"))
    assert "lowercase" in _bad_invitation(material, setv("silo", "Bad Name"))
    assert "cluster_id" in _bad_invitation(material, setv("cluster_id", "x; rm -rf /"))
    assert "not an IPv4 address" in _bad_invitation(material, setv("superlink", {"address": "host.example",
                                                                                "fleet_port": 8000}))
    assert "cannot be a machine" in _bad_invitation(material, setv("superlink", {"address": "127.0.0.1",
                                                                                "fleet_port": 8000}))
    assert "Fleet port" in _bad_invitation(material, setv("superlink", {"address": "198.18.0.1", "fleet_port": 22}))
    assert "not a port" in _bad_invitation(material, setv("superlink", {"address": "198.18.0.1",
                                                                       "fleet_port": "8000"}))
    assert "PEM certificate" in _bad_invitation(material, setv("ca_certificate", "hello"))
    assert "PEM certificate" in _bad_invitation(material, setv("ca_certificate", material["ca"] * 2))
    assert "flwr_version" in _bad_invitation(material, setv("flwr_version", "1.37.0"))
    assert "ISO-8601" in _bad_invitation(material, setv("expires", "next week"))
    assert "ISO-8601" in _bad_invitation(material, setv("expires", "2026-12-14T00:00:00"))  # no zone
    assert "token" in _bad_invitation(material, setv("token", "short"))


def test_a_leaf_certificate_is_not_a_ca(material, tmp_path):
    certs.ensure_server_cert(tmp_path, "flower", ["198.18.0.10"])
    msg = _bad_invitation(material, lambda d: d.__setitem__("ca_certificate", (tmp_path / "server.pem").read_text()))
    assert "not a CA certificate" in msg


def _bad_request(material, change) -> str:
    data = json.loads(silo.dumps(request(material, invitation(material))))
    change(data)
    with pytest.raises(UsageError) as err:
        silo.parse_request(data)
    assert "\n" not in str(err.value)
    return str(err.value)


def test_request_defects(material):
    def setv(key, value):
        return lambda d: d.__setitem__(key, value)

    assert "kind" in _bad_request(material, setv("kind", "flwrazure-silo-invitation"))
    assert "egress must list" in _bad_request(material, setv("egress", []))
    assert "egress must list" in _bad_request(material, setv("egress", "198.18.0.2"))
    assert "egress must list" in _bad_request(material, setv("egress", ["198.18.0.2"] * 9))
    assert "not an IPv4" in _bad_request(material, setv("egress", ["198.18.0.0/15"]))
    assert "not an IPv4" in _bad_request(material, setv("egress", ["2001:db8::1"]))
    assert "cannot be" in _bad_request(material, setv("egress", ["0.0.0.0"]))
    assert "OpenSSH ECDSA" in _bad_request(material, setv("public_key", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA"))
    assert "OpenSSH ECDSA" in _bad_request(material, setv("public_key", material["pub"] + "\nsecond line"))
    broken = material["pub"].split()[0] + " " + "A" * 40
    assert "does not decode" in _bad_request(material, setv("public_key", broken))
    assert "token" in _bad_request(material, setv("token", "x" * 42 + "!"))


def test_loads():
    with pytest.raises(UsageError, match="not JSON"):
        silo.loads("{", "join request r.json")
    with pytest.raises(UsageError, match="JSON list, not an object"):
        silo.loads("[]", "join request r.json")


def test_token_digest_only():
    token = silo.new_token()
    assert len(token) == 43 and silo._TOKEN.fullmatch(token)
    digest = silo.token_digest(token)
    assert silo.token_matches(token, digest)
    assert not silo.token_matches(token[:-1] + ("A" if token[-1] != "A" else "B"), digest)
    assert not silo.token_matches(token, "")


def test_record_keeps_no_token(material):
    inv = invitation(material)
    rec = silo.record(inv, NOW)
    assert inv.token not in json.dumps(rec)
    assert rec["state"] == silo.INVITED and rec["ca_fingerprint"] == silo.fingerprint(material["ca"])


def _check(material, inv, req, rec=None, now=NOW, cluster="flower", cluster_id=CLUSTER_ID, version="1.42.0"):
    rec = silo.record(inv, NOW) if rec is None else rec
    return silo.check_request(req, rec, cluster, cluster_id, version, now)


def test_admit_checks(material):
    inv = invitation(material)
    assert _check(material, inv, request(material, inv)) == silo.ADMIT
    cases = [
        (dict(req=request(material, inv, cluster_id="other-id")), "not cluster flower"),
        (dict(req=request(material, inv, cluster="other")), "not cluster flower"),
        (dict(req=request(material, inv, token=silo.new_token())), "token does not match"),
        (dict(req=request(material, inv), now=NOW + dt.timedelta(days=8)), "expired at"),
        (dict(req=request(material, inv, flwr_version="1.41.0")), "versions must be equal"),
    ]
    for kwargs, msg in cases:
        with pytest.raises(UsageError, match=msg):
            _check(material, inv, **kwargs)
    with pytest.raises(UsageError, match="has not invited"):
        silo.check_request(request(material, inv), None, "flower", CLUSTER_ID, "1.42.0", NOW)


def test_used_once_and_rerun(material):
    inv = invitation(material)
    req = request(material, inv)
    done = silo.admitted(silo.record(inv, NOW), req, "123", NOW)
    assert _check(material, inv, req, rec=done) == silo.ALREADY
    # the same request again after expiry is still the same admission (a re-run), not a new use
    assert _check(material, inv, req, rec=done, now=NOW + dt.timedelta(days=30)) == silo.ALREADY
    with pytest.raises(UsageError, match="used already"):
        _check(material, inv, request(material, inv, public_key=material["other_pub"]), rec=done)
    with pytest.raises(UsageError, match="used already"):
        _check(material, inv, request(material, inv, egress=("198.18.0.99",)), rec=done)
    with pytest.raises(UsageError, match="was removed"):
        _check(material, inv, req, rec=silo.removed(done, NOW))


def test_invite_again():
    silo.check_invite("a", None)
    silo.check_invite("a", {"state": silo.INVITED})
    silo.check_invite("a", {"state": silo.REMOVED})
    with pytest.raises(UsageError, match="silo remove a"):
        silo.check_invite("a", {"state": silo.ADMITTED})


def test_fleet_sources_only_admitted():
    silos = {"a": {"state": silo.ADMITTED, "egress": ["198.18.0.20", "198.18.0.3"]},
             "b": {"state": silo.INVITED, "egress": []},
             "c": {"state": silo.REMOVED, "egress": ["198.18.0.40"]},
             "d": {"state": silo.ADMITTED, "egress": ["198.18.0.3"]}}
    assert silo.fleet_sources(silos) == ("198.18.0.3", "198.18.0.20")


def test_online_state():
    rec = {"silo": "a", "state": silo.ADMITTED, "node_id": "77", "egress": ["198.18.0.20"]}
    listed = {"77": {"node-id": "77", "status": "online", "online-at": "2026-12-07 12:00:00Z", "offline-at": "N/A"}}
    row = silo.online_state(rec, listed)
    assert row["state"] == "online" and row["last_seen"] == "2026-12-07 12:00:00Z" and row["address"] == "198.18.0.20"
    listed["77"].update(status="offline", **{"offline-at": "2026-12-07 13:00:00Z"})
    assert silo.online_state(rec, listed)["last_seen"] == "2026-12-07 13:00:00Z"
    listed["77"].update(status="registered", **{"offline-at": "N/A"})
    row = silo.online_state(rec, listed)  # registered, never connected
    assert (row["state"], row["last_seen"]) == ("offline", None)
    assert silo.online_state(rec, {})["state"] == "not seen"
    assert silo.online_state(rec, None)["state"] == "unknown"
    invited = silo.online_state({"silo": "b", "state": silo.INVITED, "expires": "2026-12-14T00:00:00Z"}, listed)
    assert invited["state"] == silo.INVITED and invited["expires"] and invited["node_id"] is None


def test_silo_checks_expiry_before_anything(material):
    inv = invitation(material)
    silo.check_invitation(inv, NOW)
    with pytest.raises(UsageError, match=r"expired at .*\(flwrazure silo invite hospital-a --cluster flower\)"):
        silo.check_invitation(inv, NOW + dt.timedelta(days=7))


def test_doctor_check():
    silos = {"a": {"silo": "a", "state": silo.ADMITTED, "node_id": "1", "egress": ["198.18.0.2"]},
             "b": {"silo": "b", "state": silo.ADMITTED, "node_id": "2", "egress": ["198.18.0.3"]},
             "c": {"silo": "c", "state": silo.INVITED}}
    listed = {"1": {"status": "online", "online-at": "t1"}, "2": {"status": "offline", "offline-at": "t2"}}
    check = silo.doctor_check(silos, listed, "flower")
    assert check.ok is False and check.detail == "b: offline (last seen t2)" and "remove NAME --cluster flower" in \
        check.fix
    listed["2"]["status"] = "online"
    assert silo.doctor_check(silos, listed, "flower").detail == "2 silo(s) online"
    assert silo.doctor_check(silos, None, "flower").ok is None
