"""doctor's checks as pure functions: facts in, pass/fail and the fix out."""

import datetime as dt

from flwrazure.plan import doctor as d

NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.timezone.utc)


def test_vms_running_and_paused():
    rows = [{"vm": "s", "state": "running"}, {"vm": "c1", "state": "deallocated"}]
    c = d.vms_running(rows, "flower")
    assert c.ok is False and "c1 (deallocated)" in c.detail and c.fix == "flwrazure resume --cluster flower"
    assert d.vms_running([{"vm": "s", "state": "running"}], "flower").ok


def test_services_and_supernodes_name_the_bad_ones_with_their_last_lines():
    c = d.services_active({"s": "active", "c1": "inactive", "c2": "failed"}, "flower")
    assert c.ok is False and c.detail == "c1: inactive, c2: failed" and "flwrazure logs c1 c2" in c.fix
    c = d.supernodes_online({"c1": "online", "c2": "offline"}, {"c2": ["a", "", "ERROR : cannot connect"]}, "flower")
    assert c.ok is False and "c2: offline (last log: a | ERROR : cannot connect)" in c.detail
    assert d.supernodes_online({"c1": "online"}, {}, "flower").ok


def test_operator_address_inside_sources():
    assert d.address_allowed("Control", "203.0.113.7", ["203.0.113.0/24"], "fix").ok
    assert d.address_allowed("Control", "203.0.113.7", ["*"], "fix").ok
    moved = d.address_allowed("SSH", "198.51.100.9", ["203.0.113.7"], "flwrazure open-ports ...")
    assert moved.ok is False and "198.51.100.9 is not among 203.0.113.7" in moved.detail and moved.fix
    assert d.address_allowed("SSH", None, ["1.2.3.4"], "f").ok is None
    assert d.address_allowed("Control", "1.2.3.4", None, "f").ok is None


def test_control_rule_and_reachability():
    gone = d.control_rule(False, "flower", "198.18.0.1")
    assert gone.ok is False and gone.fix == "flwrazure open-ports --cluster flower --source 198.18.0.1"
    assert d.control_reachable("open", "1.2.3.4:8000", "flower", None).ok
    assert "open-ports" in d.control_reachable("timeout", "1.2.3.4:8000", "flower", None).fix
    assert "flwrazure start" in d.control_reachable("refused", "1.2.3.4:8000", "flower", None).fix


def test_certificate_address_and_expiry():
    sans = {"198.18.0.4", "10.0.0.4", "127.0.0.1", "localhost"}
    assert d.certificate(sans, NOW + dt.timedelta(days=400), "198.18.0.4", NOW, "flower").ok
    near = d.certificate(sans, NOW + dt.timedelta(days=3), "198.18.0.4", NOW, "flower")
    assert near.ok is False and "expires in 3.0 days" in near.detail and "--renew-cert" in near.fix
    assert "expired" in d.certificate(sans, NOW - dt.timedelta(days=1), "198.18.0.4", NOW, "flower").detail
    wrong = d.certificate(sans, NOW + dt.timedelta(days=400), "203.0.113.50", NOW, "flower")
    assert wrong.ok is False and "not valid for 203.0.113.50" in wrong.detail
    assert d.certificate(None, None, "x", NOW, "flower").ok is False


def test_flwr_cli_version():
    assert d.flwr_cli("1.42.3", "1.42.0").ok
    other = d.flwr_cli("1.34.0", "1.42.0")
    assert other.ok is False and other.fix == "pip install flwr==1.42.0" and "1.42 release" in other.detail
    assert d.flwr_cli(None, "1.42.0").ok is False


def test_connection_present_and_matching():
    entry = {"address": "198.18.0.4:8000", "root-certificates": "/h/ca.crt"}
    assert d.connection(entry, "198.18.0.4:8000", "/h/ca.crt", "flower", "cfg").ok
    assert d.connection(None, "198.18.0.4:8000", "/h/ca.crt", "flower", "cfg").ok is False
    wrong = d.connection({**entry, "address": "10.9.9.9:8000"}, "198.18.0.4:8000", "/h/ca.crt", "flower", "cfg")
    assert wrong.ok is False and "address 10.9.9.9:8000 (the SuperLink is 198.18.0.4:8000)" in wrong.detail
    assert d.connection({"address": "a:1", "insecure": True}, "a:1", None, "flower", "cfg").ok
    assert d.connection({"address": "a:1"}, "a:1", None, "flower", "cfg").ok is False


def test_clock_skew_from_one_round_trip():
    assert d.offset(100.0, 107.0, 102.0) == 6.0
    skewed = d.clock_skew({"s": 0.2, "c1": -6.5})
    assert skewed.ok is False and "c1 is -6.5 s off" in skewed.detail and "timedatectl" in skewed.fix
    assert d.clock_skew({"s": 0.2, "c1": 1.0}).ok and d.clock_skew({}).ok is None
    assert d.summary([skewed, d.clock_skew({}), d.clock_skew({"s": 0})]) == (1, 1, 1)
