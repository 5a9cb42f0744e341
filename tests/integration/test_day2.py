"""Day-2 commands on the local cloud with API-only VMs (hosts none): the ARM side of scale, pause/resume and cost,
through the real CLI and the real SDK over HTTPS. Their SSH/Flower side runs in tests/e2e/test_day2_e2e.py."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.helpers.cloud import flwrazure

D2S, IP, P4 = 2 * 0.05, 0.004, 5.0 / 730  # the local cloud's own price list (catalog "prices")


def ok(result):
    assert result.returncode == 0, result.stderr + result.stdout
    return result


def create(home, clients, *extra):
    return json.loads(ok(flwrazure(home, "create-cluster", "--cloud", "local", "--clients", str(clients), "--json",
                                   *extra)).stdout)


def names(cloud, rg="flower-rg"):
    return sorted((r.type.split("/")[-1], r.name) for r in cloud.resources.resources.list_by_resource_group(rg))


def fleet_sources(cloud):
    p = cloud.network.security_rules.get("flower-rg", "flower-nsg", "flwrazure-fleet").as_dict()["properties"]
    return sorted(p.get("sourceAddressPrefixes") or [p["sourceAddressPrefix"]])


def client_ips(cloud, n):
    return sorted(cloud.network.public_ip_addresses.get("flower-rg", f"flower-client-{i}-ip").ip_address
                  for i in range(1, n + 1))


def test_cost_from_the_local_price_list_then_cache_then_nothing(product_cloud, home):
    cloud = product_cloud
    created = create(home, 2)
    est = created["cost"]
    assert est["usd_per_hour"] == round(3 * (D2S + IP + P4), 4) and est["usd_per_hour_paused"] == round(3 * (IP + P4), 4)
    assert "local cloud's own price list" in est["source"] and est["missing"] == []
    human = ok(flwrazure(home, "status")).stdout  # status's report is data
    assert "Estimated cost: $" in human and "local cloud" in human
    # offline: the API does not answer -> the last answer, cached, says so
    cloud.admin("PATCH", "config", {"catalog": {"prices": {"available": False}}})
    cached = json.loads(ok(flwrazure(home, "status", "--json")).stdout)["cost"]
    assert cached["usd_per_hour"] == est["usd_per_hour"] and cached["source"].startswith("cached list prices from")
    # no answer and no cache: no estimate at all, never an invented one
    (home / "prices" / "local.json").unlink()
    status = json.loads(ok(flwrazure(home, "status", "--json")).stdout)
    assert status["cost"] is None
    assert "Estimated cost: unknown" in ok(flwrazure(home, "status")).stdout
    # prices change: the estimate follows the API
    cloud.admin("PATCH", "config", {"catalog": {"prices": {"available": True, "vcpu_hour": 0.2}}})
    assert json.loads(ok(flwrazure(home, "status", "--json")).stdout)["cost"]["usd_per_hour"] == \
        round(3 * (0.4 + IP + P4), 4)


def test_pause_deallocates_everything_and_resume_starts_it_again(product_cloud, home):
    cloud = product_cloud
    create(home, 2)
    ips = {p.name: p.ip_address for p in cloud.network.public_ip_addresses.list("flower-rg")}
    before = names(cloud)
    paused = json.loads(ok(flwrazure(home, "pause", "--json")).stdout)
    assert sorted(paused["deallocated"]) == ["flower-client-1", "flower-client-2", "flower-server"]
    assert paused["cost"]["usd_per_hour_paused"] == round(3 * (IP + P4), 4)
    status = json.loads(ok(flwrazure(home, "status", "--json")).stdout)
    assert status["power"] == "paused" and status["paused"] and [v["state"] for v in status["vms"]] == \
        ["deallocated"] * 3
    assert status["next"] == ["flwrazure resume --cluster flower"]
    human = ok(flwrazure(home, "status"))  # the report on stdout, the next step on stderr
    assert "Paused" in human.stdout and "Next: flwrazure resume --cluster flower" in human.stderr
    assert "still billed: public IPs, OS disks" in human.stdout
    # kept: static IPs (same addresses), disks, NICs, NSG and its rules
    assert names(cloud) == before
    assert {p.name: p.ip_address for p in cloud.network.public_ip_addresses.list("flower-rg")} == ips
    # re-running pause changes nothing; scale waits for resume
    since = time.time()
    again = json.loads(ok(flwrazure(home, "pause", "--json")).stdout)
    assert again["deallocated"] == [] and len(again["already"]) == 3 and cloud.writes(since) == []
    refused = flwrazure(home, "scale", "--clients", "3")
    assert refused.returncode == 2 and "flwrazure resume" in refused.stderr and cloud.writes(since) == []
    resumed = json.loads(ok(flwrazure(home, "resume", "--json")).stdout)
    assert sorted(resumed["started"]) == ["flower-client-1", "flower-client-2", "flower-server"]
    status = json.loads(ok(flwrazure(home, "status", "--json")).stdout)
    assert status["power"] == "running" and not status["paused"]
    assert status["next"] == ["flwrazure start --cluster flower"]  # Flower never started here
    assert {p.name: p.ip_address for p in cloud.network.public_ip_addresses.list("flower-rg")} == ips


def test_scale_grows_and_shrinks_the_arm_resources_and_the_fleet_rule(product_cloud, home):
    cloud = product_cloud
    create(home, 2)
    ok(flwrazure(home, "open-ports", "--source", "203.0.113.7"))
    cloud.network.network_security_groups.begin_create_or_update(  # someone else's resource in our group
        "flower-rg", "not-ours", {"location": "eastus"}).result()
    kept = {n: cloud.compute.virtual_machines.get("flower-rg", n).vm_id for n in
            ("flower-server", "flower-client-1", "flower-client-2")}
    since = time.time()
    grown = json.loads(ok(flwrazure(home, "scale", "--clients", "3", "--json")).stdout)
    assert grown["joined"] == ["flower-client-3"] and [v["state"] for v in grown["vms"]] == ["running"] * 4
    assert grown["cost"]["usd_per_hour"] == round(4 * (D2S + IP + P4), 4)
    assert fleet_sources(cloud) == client_ips(cloud, 3)
    written = {w["path"].rsplit("/", 1)[-1] for w in cloud.writes(since) if w["method"] == "PUT"}
    assert written == {"flower-client-3-ip", "flower-client-3-nic", "flower-client-3", "flwrazure-fleet"}, written
    assert {n: cloud.compute.virtual_machines.get("flower-rg", n).vm_id for n in kept} == kept  # not re-created
    # pinned host keys: the leaving VMs' lines go, the others stay
    ips = {i: cloud.network.public_ip_addresses.get("flower-rg", f"flower-client-{i}-ip").ip_address for i in (1, 2, 3)}
    known = home / "clusters" / "flower" / "known_hosts"
    known.write_text("".join(f"{ips[i]} ssh-ed25519 AAAAkey{i}\n" for i in (1, 2, 3)))
    shrunk = json.loads(ok(flwrazure(home, "scale", "--clients", "1", "--json", "--yes")).stdout)
    assert shrunk["left"] == ["flower-client-3", "flower-client-2"]
    assert names(cloud) == [("disks", "flower-client-1-osdisk"), ("disks", "flower-server-osdisk"),
                            ("networkInterfaces", "flower-client-1-nic"), ("networkInterfaces", "flower-server-nic"),
                            ("networkSecurityGroups", "flower-nsg"), ("networkSecurityGroups", "not-ours"),
                            ("publicIPAddresses", "flower-client-1-ip"), ("publicIPAddresses", "flower-server-ip"),
                            ("virtualMachines", "flower-client-1"), ("virtualMachines", "flower-server"),
                            ("virtualNetworks", "flower-vnet")]
    assert fleet_sources(cloud) == [ips[1]]
    assert known.read_text() == f"{ips[1]} ssh-ed25519 AAAAkey1\n"
    status = json.loads(ok(flwrazure(home, "status", "--json")).stdout)
    assert [v["vm"] for v in status["vms"]] == ["flower-server", "flower-client-1"]
    since = time.time()
    again = json.loads(ok(flwrazure(home, "scale", "--clients", "1", "--json")).stdout)
    assert again["left"] == [] and again["joined"] == [] and cloud.writes(since) == []
    ok(flwrazure(home, "teardown", "--yes"))
    assert names(cloud) == [("networkSecurityGroups", "not-ours")]


def test_scale_bad_input_changes_nothing(product_cloud, home):
    create(home, 1)
    since = time.time()
    for args, words in ((["--clients", "0"], "--clients 0"), (["--clients", "101"], "1 to 100"),
                        (["--clients", "2", "--cluster", "nope"], "no cluster named 'nope'")):
        result = flwrazure(home, "scale", *args)
        assert result.returncode == 2 and words in result.stderr and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert product_cloud.writes(since) == []


def _killed_after_writes(home, cloud, args, writes):
    """Run the CLI and SIGKILL it right after the cloud saw its `writes`-th ARM write (mid-way, for sure)."""
    env = {**os.environ, "FLWRAZURE_HOME": str(home), "FLWRAZURE_POLL": "0.05"}
    since = time.time()
    proc = subprocess.Popen([sys.executable, "-m", "flwrazure", *args], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        while len(cloud.writes(since)) < writes:
            assert proc.poll() is None, f"{args} finished before its write {writes}"
            assert time.time() - since < 60
            time.sleep(0.02)
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    return [(w["method"], w["path"].rsplit("/", 1)[-1]) for w in cloud.writes(since)]


@pytest.mark.parametrize("grow_writes, shrink_writes", [(1, 1), (3, 2), (6, 3)])
def test_killed_scale_converges_on_rerun(product_cloud, home, grow_writes, shrink_writes):
    """Killed after the first public IP / a NIC / a VM PUT (growing 2 -> 4), and after the Fleet rule was narrowed
    / a VM delete / two (shrinking 4 -> 1): re-running the same command converges, and then writes nothing."""
    cloud = product_cloud
    create(home, 2)
    ok(flwrazure(home, "open-ports", "--source", "203.0.113.7"))
    cloud.admin("PATCH", "config", {"latency": 0.4})
    done = _killed_after_writes(home, cloud, ["scale", "--clients", "4"], grow_writes)
    assert len(done) >= grow_writes and ("PUT", "flwrazure-fleet") not in done  # killed before the end
    grown = json.loads(ok(flwrazure(home, "scale", "--clients", "4", "--json")).stdout)
    assert [v["state"] for v in grown["vms"]] == ["running"] * 5
    assert fleet_sources(cloud) == client_ips(cloud, 4)
    since = time.time()
    assert json.loads(ok(flwrazure(home, "scale", "--clients", "4", "--json")).stdout)["joined"] == []
    assert cloud.writes(since) == []
    done = _killed_after_writes(home, cloud, ["scale", "--clients", "1", "--yes"], shrink_writes)
    assert done[0] == ("PUT", "flwrazure-fleet")  # narrowed before any address is released
    ok(flwrazure(home, "scale", "--clients", "1", "--yes"))
    vms = sorted(v.name for v in cloud.compute.virtual_machines.list("flower-rg"))
    assert vms == ["flower-client-1", "flower-server"]
    assert sorted(p.name for p in cloud.network.public_ip_addresses.list("flower-rg")) == \
        ["flower-client-1-ip", "flower-server-ip"]
    assert fleet_sources(cloud) == client_ips(cloud, 1)
    status = json.loads(ok(flwrazure(home, "status", "--json")).stdout)
    assert status["power"] == "running" and [v["vm"] for v in status["vms"]] == ["flower-server", "flower-client-1"]
    ok(flwrazure(home, "teardown", "--yes"))
    assert list(cloud.resources.resources.list()) == []


def test_logs_and_ssh_refuse_bad_input_before_connecting(product_cloud, home):
    """No connection is attempted (API-only VMs have no SSH): every refusal happens from the record and ARM."""
    create(home, 2)
    for args, code, words in (
            (["logs"], 2, "Flower was not started on cluster flower"),
            (["ssh", "--all"], 2, "--all needs a command"),
            (["ssh", "client-9", "--", "hostname"], 2, "no VM 'client-9' in cluster flower"),
            (["ssh", "client-1", "client-2", "--", "hostname"], 2, "one VM at a time"),
            (["ssh", "--all", "server", "--", "hostname"], 2, "give no VM name with it")):
        result = flwrazure(home, *args)
        assert result.returncode == code and words in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
    st = json.loads((home / "clusters" / "flower" / "state.json").read_text())
    (home / "clusters" / "flower" / "state.json").write_text(json.dumps({**st, "started": True}))
    bad = flwrazure(home, "logs", "--since", "ten minutes")
    assert bad.returncode == 2 and "is not a duration" in bad.stderr
    bad = flwrazure(home, "logs", "client-7")
    assert bad.returncode == 2 and "no VM 'client-7'" in bad.stderr
    ok(flwrazure(home, "pause"))
    quiet = ok(flwrazure(home, "logs", "--since", "1h"))  # deallocated VMs: said, and not connected to
    assert quiet.stdout == "" and "not running, no logs from: flower-server, flower-client-1, flower-client-2" in \
        quiet.stderr
    paused = flwrazure(home, "ssh", "client-1", "--", "hostname")
    assert paused.returncode == 1 and "flower-client-1 is deallocated" in paused.stderr and \
        "flwrazure resume" in paused.stderr


def _pretend_started(home, cloud):
    """The record and local files `start` leaves on a secure 1.42 cluster (API-only VMs cannot run Flower): the
    SuperLink certificate for the server's addresses and the [superlink.flower] connection."""
    from flwrazure.workstation import certs, flwrconfig

    path = home / "clusters" / "flower" / "state.json"
    st = json.loads(path.read_text())
    server_ip = cloud.network.public_ip_addresses.get("flower-rg", "flower-server-ip").ip_address
    private = cloud.network.network_interfaces.get("flower-rg", "flower-server-nic").ip_configurations[0].\
        private_ip_address
    tls = home / "clusters" / "flower" / "tls"
    certs.ensure_server_cert(tls, "flower", [server_ip, private])
    os.environ["FLWR_HOME"] = str(home / "flwr")
    try:
        flwrconfig.write_connection("flower", f"{server_ip}:8000", str((tls / "ca.crt").resolve()))
    finally:
        del os.environ["FLWR_HOME"]
    path.write_text(json.dumps({**st, "started": True, "secure": True, "superlink_address": f"{server_ip}:8000"}))
    return server_ip


def doctor(home, *args, path=None):
    env = {"FLWR_HOME": str(home / "flwr"), "PATH": path or os.environ["PATH"]}
    result = flwrazure(home, "doctor", "--local-only", "--json", *args, env=env)
    assert result.returncode in (0, 1), result.stderr
    data = json.loads(result.stdout)
    assert (result.returncode == 0) == data["ok"]
    return {c["name"]: c for c in data["checks"]}, result.returncode


def test_doctor_operator_side_finds_each_injected_failure(product_cloud, home, tmp_path):
    import shutil

    cloud = product_cloud
    create(home, 2, "--flwr-version", "1.42.0")
    ok(flwrazure(home, "open-ports", "--source", "198.18.0.1"))
    server_ip = _pretend_started(home, cloud)
    bare = str(tmp_path / "no-flwr")  # a PATH without any flwr CLI
    os.mkdir(bare)
    os.symlink(sys.executable, os.path.join(bare, "python3"))
    assert shutil.which("flwr", path=bare) is None
    checks, code = doctor(home, path=bare)
    healthy = ["vms running", "your address allowed (SSH)", "control rule present", "your address allowed (Control)",
               "superlink certificate", "flwr connection"]
    assert [n for n in healthy if checks[n]["ok"] is not True] == [], checks
    assert checks["flwr cli version"]["ok"] is False and checks["flwr cli version"]["fix"] == "pip install flwr==1.42.0"
    assert code == 1
    assert {n for n, c in checks.items() if c["ok"] is None} == {"control port reachable", "services active",
                                                                 "supernodes online", "clock skew"}
    # the operator's address no longer among the allowed sources (narrowed to another address)
    ok(flwrazure(home, "open-ports", "--source", "203.0.113.7"))
    checks, _ = doctor(home, path=bare)
    assert checks["your address allowed (Control)"]["ok"] is False
    assert checks["your address allowed (Control)"]["fix"] == \
        "flwrazure open-ports --cluster flower --source 198.18.0.1"
    cloud.network.security_rules.begin_create_or_update("flower-rg", "flower-nsg", "flwrazure-ssh", {
        "properties": {"protocol": "Tcp", "access": "Allow", "direction": "Inbound", "priority": 1000,
                       "sourcePortRange": "*", "destinationPortRange": "22", "sourceAddressPrefix": "203.0.113.7",
                       "destinationAddressPrefix": "10.0.0.0/24"}}).result()
    checks, _ = doctor(home, path=bare)
    ssh_fix = checks["your address allowed (SSH)"]["fix"]
    assert checks["your address allowed (SSH)"]["ok"] is False and ssh_fix.startswith("flwrazure create-cluster")
    # the fix it offers works as offered, and changes nothing else
    ok(flwrazure(home, *ssh_fix.split()[1:]))
    ok(flwrazure(home, "open-ports", "--source", "198.18.0.1"))
    checks, _ = doctor(home, path=bare)
    assert checks["your address allowed (SSH)"]["ok"] and checks["your address allowed (Control)"]["ok"]
    assert len(list(cloud.compute.virtual_machines.list("flower-rg"))) == 3
    # the Control rule removed
    cloud.network.security_rules.begin_delete("flower-rg", "flower-nsg", "flwrazure-control").result()
    checks, _ = doctor(home, path=bare)
    assert checks["control rule present"]["ok"] is False and "open-ports" in checks["control rule present"]["fix"]
    ok(flwrazure(home, "open-ports", "--source", "198.18.0.1"))
    # the connection pointing at a wrong address
    cfg = home / "flwr" / "config.toml"
    cfg.write_text(cfg.read_text().replace(f"{server_ip}:8000", "198.18.9.9:8000"))
    checks, _ = doctor(home, path=bare)
    assert checks["flwr connection"]["ok"] is False and "198.18.9.9:8000" in checks["flwr connection"]["detail"]
    assert checks["superlink certificate"]["ok"] is False  # not valid for the address flwr would dial
    assert "not valid for 198.18.9.9" in checks["superlink certificate"]["detail"]
    cfg.write_text(cfg.read_text().replace("198.18.9.9:8000", f"{server_ip}:8000"))
    # a certificate near expiry
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization

    tls = home / "clusters" / "flower" / "tls"
    ca = x509.load_pem_x509_certificate((tls / "ca.crt").read_bytes())
    signer = serialization.load_pem_private_key((tls / "ca.key").read_bytes(), None)
    old = x509.load_pem_x509_certificate((tls / "server.pem").read_bytes())
    soon = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=5)
    near = (x509.CertificateBuilder().subject_name(old.subject).issuer_name(ca.subject).public_key(old.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(old.not_valid_before_utc)
            .not_valid_after(soon).add_extension(old.extensions.get_extension_for_class(
                x509.SubjectAlternativeName).value, critical=False).sign(signer, hashes.SHA384()))
    (tls / "server.pem").write_bytes(near.public_bytes(serialization.Encoding.PEM))
    checks, _ = doctor(home, path=bare)
    assert checks["superlink certificate"]["ok"] is False and "expires in 5.0 days" in checks["superlink certificate"]["detail"]
    assert checks["superlink certificate"]["fix"] == "flwrazure doctor --cluster flower --renew-cert   " \
        "(SuperNodes keep working)"
    # human output: one line per check, the fix under each failure, exit code 1; the report is data: stdout
    human = flwrazure(home, "doctor", "--local-only", env={"FLWR_HOME": str(home / "flwr"), "PATH": bare})
    assert human.returncode == 1 and "FAIL  superlink certificate" in human.stdout and "fix: flwrazure doctor" in \
        human.stdout
