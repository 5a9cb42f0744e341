"""Sandbox hosts that boot a real systemd: each VM is `systemd-nspawn -b` on a copy-on-write overlay of its image
(its upper folder is the VM's disk, kept across deallocate/start), inside its own network namespace: eth0 on its
VNet's bridge (private IP, a route to the VNet's whole address space: every subnet of a VNet is on its bridge), eth1
on the public bridge (public IP), no default route, its size's memory as a limit.
A VM without a public IP has no eth1: its way to the public range is its subnet's NAT gateway (or Azure's default
outbound access), an egress gateway namespace of its own (egress.py), or none at all in a private subnet.

The image is a bare cloud image (images.py); the osProfile is applied on the first boot by a provisioning agent
that lags behind sshd, while a first-boot apt job holds the dpkg lock (guest.py), as on Azure. With
`image_source="host"` the VM boots an overlay of this machine's own OS instead, provisioned before its first boot
(quick experiments; everything this machine has installed is there too)."""

from __future__ import annotations

import ipaddress
import os
import secrets
import shutil
import subprocess
import threading
import time
from pathlib import Path

from flwrazure.localcloud import guest, images
from flwrazure.localcloud.hosts import NullDriver, cgroups, egress
from flwrazure.localcloud.hosts import firewall as fw
from flwrazure.localcloud.hosts import plumbing as pl

# the public range (198.18.0.0/15): the one route a VM without a public IP gets, via its subnet's gateway
PUBLIC_NET = str(ipaddress.ip_network(f"{pl.PUBLIC_GATEWAY}/{pl.PUBLIC_PREFIX_LEN}", strict=False))

# folders of this machine a VM must not see (made opaque in its disk): they read as empty inside. Besides these,
# the local cloud's own state folder (its CA key, client secret, the VMs' disks) and $FLWRAZURE_HOME (clusters' SSH
# and SuperNode keys), wherever they are: see hidden_dirs
HIDDEN = ["home", "root", "tmp", "work", "mnt", "media", "srv", "var/tmp", "run/netns"]
# what a booting OS needs: a folder holding (or being) one of these is never hidden, whatever the state folder is
ESSENTIAL = ["bin", "sbin", "lib", "lib64", "usr/bin", "usr/sbin", "usr/lib", "usr/lib64", "usr/share", "etc",
             "var/lib/dpkg", "var/lib/systemd", "var/lib/apt", "var/log", "var/cache/apt", "boot", "run", "dev",
             "proc", "sys"]


def hidden_dirs(secret_dirs: list[str | Path]) -> list[str]:
    """The folders (relative to /) a VM booting this machine's OS reads as empty: HIDDEN and the given folders of
    secrets (absolute paths), except any that holds something the OS needs to boot (pure)."""
    found = list(HIDDEN)
    for folder in secret_dirs:
        rel = os.path.normpath(str(folder)).strip("/")
        if not str(folder).startswith("/") or not rel or rel.startswith(".."):
            continue
        if any(e == rel or e.startswith(rel + "/") for e in ESSENTIAL):
            continue
        if not any(rel == h or rel.startswith(h + "/") for h in found):
            found.append(rel)
    return found


def scrub_shadow(text: str, keep: str = "") -> str:
    """/etc/shadow of this machine for a VM: no password hash of any account survives (they become '*', no
    password login; the admin user logs in with keys, as on Azure) (pure)."""
    lines = []
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) > 2 and fields[0] != keep and fields[1] not in ("", "*", "!", "!*", "!!"):
            fields[1] = "*"
        lines.append(":".join(fields))
    return "\n".join(lines) + ("\n" if text.endswith("\n") else "")
KEEP_ENABLED = {"ssh.service", "machines.target", "remote-fs.target"}


def available() -> str | None:
    """None when this machine can run nspawn hosts, else why not."""
    if os.geteuid() != 0:
        return "sandbox hosts need root"
    for tool in ("systemd-nspawn", "ip", "iptables-restore", "useradd", "ssh-keygen"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if not Path("/usr/sbin/sshd").exists():
        return "openssh-server is not installed"
    return None


class NspawnDriver(NullDriver):
    name = "nspawn"

    def __init__(self, state_dir: Path, boot_delay: float = 2.0, pip_index: str | None = None,
                 systemd: bool = True, vm_cpu: float | None = None, image_source: str = "image",
                 images_dir: Path | None = None, provision_lag: float = 0.0, first_boot_apt: float = 0.0,
                 say=None):
        self.systemd = systemd  # False: PID 2 is sshd alone (a host without systemd)
        if vm_cpu and (why := cgroups.available("cpu")):
            raise pl.PlumbingError(f"--vm-cpu: {why}")
        self.vm_cpu = vm_cpu  # each VM's processes capped at this fraction of a core
        self.memory = cgroups.available("memory") is None  # each VM limited to its size's memory
        self.image_source = image_source  # "image": bare cloud images; "host": this machine's OS
        self.provision_lag = provision_lag
        self.first_boot_apt = first_boot_apt
        self.images: dict[str, images.Image] = {}
        if image_source == "image":
            self.images[images.BASE] = images.ensure(images_dir or images.images_dir(state_dir), say=say)
        self.api_only: dict[str, str] = {}  # VM name -> why it has no host (an image this machine cannot boot)
        self.reason = None
        self.hosts_dir = state_dir / "hosts"
        self.hosts_dir.mkdir(parents=True, exist_ok=True)
        self.names = pl.Names(state_dir)
        self.boot_delay = boot_delay
        self.pip_index = pip_index
        self.lock = threading.RLock()
        self.running: dict[str, dict] = {}  # vm key -> {"proc", "netns", "vnet_bridge", "rules", "name"}
        self.booting: set[str] = set()
        self.egress: dict[str, dict] = {}  # egress gateway key -> {"netns", "spec", "links"}
        self.egress_lock = threading.Lock()
        self.removed_at_start = pl.cleanup(self.names, self.hosts_dir) + cgroups.cleanup(self.names.tag)
        _raise_inotify_limit()
        other = pl.public_range_taken_by_other(self.names.public_bridge)
        if other:
            raise pl.PlumbingError(f"{pl.PUBLIC_GATEWAY} is already on {other}: another local cloud with sandbox "
                                   "hosts is running on this machine; stop it first.")
        pl.ensure_bridge(self.names.public_bridge, f"{pl.PUBLIC_GATEWAY}/{pl.PUBLIC_PREFIX_LEN}")

    # -- what the ARM side knows about a VM -----------------------------------------------------------------
    def _facts(self, ctx, vm: dict) -> dict:
        with ctx.store.lock:
            nic_id = vm["properties"]["networkProfile"]["networkInterfaces"][0]["id"]
            nic = ctx.store.get(nic_id)["body"]
            cfg = nic["properties"]["ipConfigurations"][0]["properties"]
            subnet_id = cfg["subnet"]["id"]
            vnet_id = subnet_id.split("/subnets/")[0]
            vnet = ctx.store.get(vnet_id)["body"]
            subnet = next(s for s in vnet["properties"]["subnets"] if s["id"].lower() == subnet_id.lower())
            pip = ctx.store.get(cfg["publicIPAddress"]["id"]) if cfg.get("publicIPAddress") else None
            subnet_nsg_ref = subnet["properties"].get("networkSecurityGroup")
            nic_nsg_ref = nic["properties"].get("networkSecurityGroup")
            subnet_nsg = ctx.store.get(subnet_nsg_ref["id"]) if subnet_nsg_ref else None
            nic_nsg = ctx.store.get(nic_nsg_ref["id"]) if nic_nsg_ref else None
            prefix = subnet["properties"].get("addressPrefix") or subnet["properties"]["addressPrefixes"][0]
            os_profile = vm["properties"]["osProfile"]
            record = ctx.store.get(vm["id"]) if vm.get("id") else None
            return {
                "custom_data": (record or {}).get("meta", {}).get("custom_data"),
                "key": vm["properties"]["vmId"], "name": vm["name"],
                "mac": pl.guest_mac(nic["properties"].get("macAddress"), nic_id),
                "public_mac": pl.public_mac(nic_id),
                "computer": os_profile["computerName"], "user": os_profile["adminUsername"],
                "keys": [k["keyData"] for k in os_profile.get("linuxConfiguration", {}).get("ssh", {}).get(
                    "publicKeys", [])],
                "private_ip": cfg["privateIPAddress"].split("/")[0],
                "private_len": ipaddress.ip_network(prefix).prefixlen, "vnet_id": vnet_id,
                "subnet_id": subnet["id"], "gateway": egress.gateway_address(prefix).split("/")[0],
                "vnet_prefixes": tuple(vnet["properties"]["addressSpace"]["addressPrefixes"]),
                "public_ip": pip["body"]["properties"].get("ipAddress") if pip else None,
                "subnet_nsg": subnet_nsg["body"] if subnet_nsg else None,
                "nic_nsg": nic_nsg["body"] if nic_nsg else None,
                "image": vm["properties"]["storageProfile"].get("imageReference") or {},
                "memory_gib": _memory_gib(ctx.catalog, vm["properties"]["hardwareProfile"]["vmSize"]),
            }

    def _disk(self, key: str) -> Path:
        return self.hosts_dir / key

    # -- the disk -------------------------------------------------------------------------------------------
    def _lower(self, facts: dict) -> str | None:
        """The read-only layer of a VM's disk: its image's root filesystem, or this machine's OS."""
        if self.image_source == "host":
            return "/"
        kind = images.kind_of(facts["image"])
        return str(self.images[kind.base].rootfs) if kind.base else None

    def _prepare_disk(self, facts: dict) -> None:
        disk = self._disk(facts["key"])
        upper = disk / "upper"
        if upper.exists():
            return
        for sub in ("upper", "work", "root"):
            (disk / sub).mkdir(parents=True, exist_ok=True)
        (disk / "lower").write_text(self._lower(facts) or "")
        if self.image_source == "host":
            self._hide(upper)
            (upper / "tmp").chmod(0o1777)
            (upper / "var" / "tmp").chmod(0o1777)
        self._mount(facts["key"])
        try:
            if self.image_source == "host":
                self._provision(disk / "root", facts)
            else:
                self._first_boot(disk / "root", facts)
            self._common(disk / "root")
        finally:
            pl.umount(str(disk / "root"))

    def secret_dirs(self) -> list[Path]:
        """This machine's folders with the local cloud's and the operator's secrets (see HIDDEN)."""
        found = [self.hosts_dir.parent.resolve()]
        if os.environ.get("FLWRAZURE_HOME"):
            found.append(Path(os.environ["FLWRAZURE_HOME"]).expanduser().resolve())
        return found

    def _hide(self, upper: Path) -> None:
        """Opaque folders in a host-image VM's disk (only while it is not mounted): this machine's content under
        them is invisible, the VM's own (e.g. /home/azureuser) stays. Applied at every mount, so a disk made before
        a folder was added to the list gets it too."""
        for rel in hidden_dirs(self.secret_dirs()):
            d = upper / rel
            try:
                d.mkdir(parents=True, exist_ok=True)
                os.setxattr(d, "trusted.overlay.opaque", b"y")
            except OSError:  # the VM made a file there: nothing of this machine shows through it either
                continue

    def _first_boot(self, root: Path, f: dict) -> None:
        """A bare image: what the VM's first boot needs (its osProfile, the agent applying it, the first-boot apt
        job), fresh host keys and machine id (cloud-init makes those before sshd starts, too)."""
        flavour = images.kind_of(f["image"]).flavour
        fb = guest.FirstBoot(hostname=f["computer"], user=f["user"], keys=tuple(f["keys"]),
                             provision_lag=self.provision_lag,
                             apt_seconds=self.first_boot_apt if flavour == "ubuntu" else 0.0,
                             private_ip=f["private_ip"], mirror=self.mirror_base or "http://127.0.0.1:9",
                             user_data=f.get("custom_data"))
        for rel, (text, mode) in guest.files(fb, self.systemd).items():
            path = root / rel.lstrip("/")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            path.chmod(mode)
        if self.systemd:
            wants = root / "etc" / "systemd" / "system" / "multi-user.target.wants"
            wants.mkdir(parents=True, exist_ok=True)
            for unit in guest.enabled_units(fb):
                (wants / unit).unlink(missing_ok=True)
                (wants / unit).symlink_to(f"/etc/systemd/system/{unit}")
        (root / "etc" / "machine-id").write_text(secrets.token_hex(16) + "\n")
        pl.run("ssh-keygen", "-A", "-f", str(root))

    def _provision(self, root: Path, f: dict) -> None:
        """This machine's OS: what Azure's provisioning agent does on first boot, done to the disk before it."""
        etc = root / "etc"
        (etc / "hostname").write_text(f["computer"] + "\n")
        (etc / "hosts").write_text(f"127.0.0.1 localhost\n127.0.1.1 {f['computer']}\n"
                                   f"{f['private_ip']} {f['computer']}\n")
        (etc / "machine-id").write_text(secrets.token_hex(16) + "\n")
        user = f["user"]
        pl.run("useradd", "--root", str(root), "--create-home", "--shell", "/bin/bash", "--groups", "sudo",
               "--comment", "Azure admin user", user)
        pl.run("usermod", "--root", str(root), "--password", "*", user)  # no password, not locked: keys only
        for name in ("shadow", "gshadow"):  # none of this machine's password hashes
            if (etc / name).is_file():
                (etc / name).write_text(scrub_shadow((etc / name).read_text()))
        uid, gid = (int(x) for x in _passwd_ids(etc / "passwd", user))
        ssh_dir = root / "home" / user / ".ssh"
        ssh_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        (ssh_dir / "authorized_keys").write_text("".join(k.strip() + "\n" for k in f["keys"]))
        (ssh_dir / "authorized_keys").chmod(0o600)
        for p in (ssh_dir, ssh_dir / "authorized_keys"):
            os.chown(p, uid, gid)
        sudoers = etc / "sudoers.d" / "90-cloud-init-users"
        sudoers.write_text(f"# Created by flwrazure's local cloud, as cloud-init does on Azure\n"
                           f"{user} ALL=(ALL) NOPASSWD:ALL\n")
        sudoers.chmod(0o440)
        (etc / "ssh" / "sshd_config.d").mkdir(exist_ok=True)
        (etc / "ssh" / "sshd_config.d" / "50-flwrazure.conf").write_text(
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin no\n")
        for old in (etc / "ssh").glob("ssh_host_*"):
            old.unlink()
        pl.run("ssh-keygen", "-A", "-f", str(root))
        units = etc / "systemd" / "system"
        for wants in units.glob("*.wants"):
            for unit in wants.iterdir():
                if unit.name not in KEEP_ENABLED:
                    (units / unit.name).unlink(missing_ok=True)
                    (units / unit.name).symlink_to("/dev/null")  # masked, as on a fresh Ubuntu VM
        if self.mirror_base:
            for rel, (text, mode) in guest.package_indexes(self.mirror_base).items():
                path = root / rel.lstrip("/")
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
                path.chmod(mode)

    def _common(self, root: Path) -> None:
        units = root / "etc" / "systemd" / "system"
        conf = root / "etc" / "systemd" / "system.conf.d"
        conf.mkdir(parents=True, exist_ok=True)  # deallocate should not wait 90 s for stray session processes
        (conf / "flwrazure.conf").write_text("[Manager]\nDefaultTimeoutStopSec=5s\n")
        drop_in = units / "ssh.service.d"
        drop_in.mkdir(parents=True, exist_ok=True)
        (drop_in / "flwrazure-boot-delay.conf").write_text(
            f"[Service]\nExecStartPre=/bin/sleep {self.boot_delay:g}\n")

    @property
    def mirror_base(self) -> str | None:
        """http://gateway:port of the VMs' package mirror (pip index under /simple, apt under /debian)."""
        return self.pip_index.rsplit("/simple", 1)[0] if self.pip_index else None

    def _mount(self, key: str) -> None:
        disk = self._disk(key)
        root = disk / "root"
        if str(root.resolve()) in pl.mounts_under(disk):
            return
        lower = (disk / "lower").read_text().strip() if (disk / "lower").exists() else "/"
        if lower == "/":
            self._hide(disk / "upper")
        pl.run("mount", "-t", "overlay", "overlay", "-o",
               f"lowerdir={lower},upperdir={disk / 'upper'},workdir={disk / 'work'}", str(root))

    # -- lifecycle ------------------------------------------------------------------------------------------
    def create(self, ctx, vm: dict) -> None:
        self._boot(ctx, vm)

    def start(self, ctx, vm: dict) -> None:
        self._boot(ctx, vm)

    def _boot(self, ctx, vm: dict) -> None:
        f = self._facts(ctx, vm)
        key = f["key"]
        if self.image_source == "image" and (why := images.kind_of(f["image"]).why_not):
            self.api_only[f["name"]] = why  # no host: the VM exists in the API only
            return
        with self.lock:
            if key in self.running or key in self.booting:
                return
            self.booting.add(key)
        try:
            self._prepare_disk(f)  # per VM: no lock, so many VMs boot at once
            self._mount(key)
            ns = self.names.netns(key)
            pl.new_netns(ns)
            bridge = self.names.vnet_bridge(f["vnet_id"])
            with self.lock:
                pl.ensure_bridge(bridge)
            pl.attach(ns, self.names.veth_private(key), bridge, fw.PRIVATE_IF,
                      [f"{f['private_ip']}/{f['private_len']}"], mac=f["mac"])
            for prefix in vnet_routes(f["vnet_prefixes"], f"{f['private_ip']}/{f['private_len']}"):
                pl.run("ip", "route", "add", prefix, "dev", fw.PRIVATE_IF, netns=ns)  # Azure's VNet system route
            if f["public_ip"]:
                pl.attach(ns, self.names.veth_public(key), self.names.public_bridge, fw.PUBLIC_IF,
                          [f"{f['public_ip']}/{pl.PUBLIC_PREFIX_LEN}"], mac=f["public_mac"])
            else:  # the public range only (no default route), via the subnet's gateway: an egress gateway or none
                pl.run("ip", "route", "add", PUBLIC_NET, "via", f["gateway"], "dev", fw.PRIVATE_IF, netns=ns)
            entry = {"netns": ns, "vnet_bridge": bridge, "rules": None, "name": f["name"],
                     "private": not f["public_ip"], "subnet_id": f["subnet_id"], "vnet_id": f["vnet_id"],
                     "gateway": f["gateway"]}
            self._apply_rules(entry, f)
            log = open(self._disk(key) / "console.log", "ab")
            argv = ["systemd-nspawn", "-D", str(self._disk(key) / "root"), "--register=no", "--keep-unit",
                    f"--network-namespace-path=/run/netns/{ns}", "-M", f["computer"], "--console=passive",
                    "--resolv-conf=off", "--timezone=off", "--link-journal=no", *self._init()]
            memory = int(f["memory_gib"] * 2**30) if self.memory and f["memory_gib"] else None
            # always a group of its own (its systemd's tree; see cgroups), with the size's memory and CPU limits
            entry["cgroup"] = cgroups.create(f"{self.names.tag}{pl.short(key)}", self.vm_cpu, memory)
            argv = cgroups.wrap(entry["cgroup"], argv)
            entry["proc"] = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                             start_new_session=True)
            log.close()
            with self.lock:
                self.running[key] = entry
        finally:
            with self.lock:
                self.booting.discard(key)
        time.sleep(0.3)
        if entry["proc"].poll() is not None:
            tail = (self._disk(key) / "console.log").read_text(errors="replace").strip().splitlines()[-3:]
            self._teardown_host(key)
            raise pl.PlumbingError(f"VM {f['name']} did not boot: {' | '.join(tail)}")
        if entry.get("private"):
            self._sync_egress(ctx)
        if self.systemd:
            threading.Thread(target=self._watch_boot, args=(key, entry, f["name"]), daemon=True,
                             name=f"boot-watch-{f['name']}").start()

    GUEST_BOOT = 4.0  # seconds from nspawn's start to the agent running (measured: systemd reaches it in ~2-4 s)

    def ready_budget(self) -> float:
        """Seconds a new VM takes here from boot to its provisioning signal (the end of its create)."""
        return self.GUEST_BOOT + (self.provision_lag if self.image_source == "image" else 0.0)

    def wait_ready(self, ctx, vm: dict, timeout: float = 300.0) -> bool:
        """Block until the VM's agent has signalled `ready` (its users and keys applied), as Azure completes a VM
        create only then; True when it did. A VM booting this machine's OS is provisioned before its boot."""
        key = vm["properties"]["vmId"]
        if self.image_source != "image" or vm["name"] in self.api_only:
            return True
        ready = self._disk(key) / "root" / guest.READY.lstrip("/")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            entry = self.running.get(key)
            if ready.exists():
                return True
            if entry is None or entry["proc"].poll() is not None:
                return False
            time.sleep(0.2)
        return False

    BOOT_WATCH = 90.0  # seconds after which a VM that has not finished booting is reported (boot diagnostics)

    def _watch_boot(self, key: str, entry: dict, name: str) -> None:
        """Like Azure's boot diagnostics: a VM whose boot has not finished BOOT_WATCH s after it started (sshd then
        refuses every user but root: /run/nologin) gets what systemd is waiting for written to its console log
        and to the local cloud's log."""
        deadline = time.monotonic() + self.BOOT_WATCH
        while time.monotonic() < deadline:
            time.sleep(5)
            if self.running.get(key) is not entry or entry["proc"].poll() is not None:
                return
        report = _inside(entry["proc"].pid, "test -e /run/nologin || exit 0; echo \"boot not finished: $(systemctl "
                                             "is-system-running)\"; systemctl list-jobs --no-pager | head -n 15; "
                                             "systemctl --failed --no-pager --no-legend | head -n 10; "
                                             "for u in $(systemctl --failed --no-legend --plain | awk '{print $1}' | "
                                             "head -n 3); do journalctl -b -u \"$u\" --no-pager -n 4 -o cat; done; "
                                             f"cat {guest.DATA}/status.json 2>/dev/null")
        if report.strip():
            text = f"flwrazure local cloud: VM {name} {report.strip()}"
            with open(self._disk(key) / "console.log", "a") as log:
                log.write(text + "\n")
            print(text.replace("\n", " | "), flush=True)

    def _init(self) -> list[str]:
        if self.systemd:
            return ["-b"]
        return ["--as-pid2", "/bin/sh", "-c", f"if [ -x {guest.FIRST_BOOT} ]; then {guest.FIRST_BOOT}; fi; "
                f"sleep {self.boot_delay:g}; mkdir -p /run/sshd && exec /usr/sbin/sshd -D -e"]

    def _apply_rules(self, entry: dict, f: dict) -> None:
        view = fw.HostView(f["private_ip"], f["public_ip"], f["vnet_prefixes"])
        rules = fw.ruleset(view, f["subnet_nsg"], f["nic_nsg"])
        if rules != entry["rules"]:
            pl.run("iptables-restore", input=rules, netns=entry["netns"])
            entry["rules"] = rules

    def stop(self, ctx, vm: dict) -> None:
        self._teardown_host(vm["properties"]["vmId"])
        self._sync_egress(ctx)

    def _teardown_host(self, key: str) -> None:
        with self.lock:
            entry = self.running.pop(key, None)
        if entry and entry.get("proc") is not None:
            proc = entry["proc"]
            if proc.poll() is None:
                proc.terminate()  # nspawn passes it on as a clean poweroff to the container's systemd
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)
        for pid in pl.processes_mentioning(str(self._disk(key).resolve()) + "/"):
            pl._kill(pid)
        pl.umount(str(self._disk(key) / "root"))
        pl.delete_netns(self.names.netns(key))
        for link in (self.names.veth_private(key), self.names.veth_public(key)):
            if link in pl.links():
                pl.run("ip", "link", "del", link, check=False)
        if entry:
            self._drop_unused_bridge(entry["vnet_bridge"])
            if entry.get("cgroup"):
                cgroups.remove(entry["cgroup"])

    def _drop_unused_bridge(self, bridge: str) -> None:
        with self.lock:
            if not any(e["vnet_bridge"] == bridge for e in self.running.values()):
                pl.run("ip", "link", "del", bridge, check=False)

    def delete(self, ctx, vm: dict) -> None:
        key = vm["properties"]["vmId"]
        self._teardown_host(key)
        self._sync_egress(ctx)
        shutil.rmtree(self._disk(key), ignore_errors=True)

    def network_changed(self, ctx) -> None:
        with self.lock:
            keys = list(self.running)
        for key in keys:
            with ctx.store.lock:
                vm = next((r["body"] for r in ctx.store.all_of_type("Microsoft.Compute/virtualMachines")
                           if r["body"]["properties"]["vmId"] == key), None)
            if vm is None:
                continue
            try:
                f = self._facts(ctx, vm)
            except (KeyError, TypeError, AttributeError, StopIteration):
                continue  # the VM's network is being torn down
            with self.lock:
                if key in self.running:
                    self._apply_rules(self.running[key], f)
        self._sync_egress(ctx)

    # -- egress gateways (NAT gateways, default outbound access) ---------------------------------------------
    def _egress_wanted(self, ctx) -> dict[str, egress.Egress]:
        """What the running VMs without public IPs need, from the ARM side (subnets, NAT gateways, their IPs)."""
        with self.lock:
            hosts = sorted({egress.PrivateHost(e["subnet_id"], e["vnet_id"]) for e in self.running.values()
                            if e.get("private")}, key=lambda h: h.subnet_id)
        subnets: dict[str, dict] = {}
        addresses: dict[str, str | None] = {}
        with ctx.store.lock:
            for host in hosts:
                vnet = ctx.store.get(host.vnet_id)
                subnet = next((s for s in (vnet["body"]["properties"].get("subnets", []) if vnet else [])
                               if s["id"].lower() == host.subnet_id.lower()), None)
                if subnet is None:
                    continue
                subnets[host.subnet_id.lower()] = subnet
                nat_id = (subnet["properties"].get("natGateway") or {}).get("id")
                nat = ctx.store.get(nat_id) if nat_id else None
                if nat is not None:
                    ips = [ctx.store.get(r["id"]) for r in nat["body"]["properties"].get("publicIpAddresses", [])]
                    found = [r["body"]["properties"].get("ipAddress") for r in ips if r is not None]
                    addresses[nat_id.lower()] = next((a for a in found if a), None)
        return egress.plan(hosts, subnets, addresses)

    def _sync_egress(self, ctx) -> None:
        """Make the egress gateways what the running VMs need now: an association, a dissociation or a NAT
        gateway's new address takes effect at once, as NSG changes do (a changed gateway is made anew)."""
        with self.egress_lock:  # the plan too: two changes at once must not apply the older one last
            try:
                wanted = self._egress_wanted(ctx)
            except (KeyError, TypeError, AttributeError) as exc:  # the network is being torn down: next change
                print(f"flwrazure local cloud: egress gateways not updated: {exc!r}", flush=True)
                return
            for key in [k for k, v in self.egress.items() if wanted.get(k) != v["spec"]]:
                self._egress_down(self.egress.pop(key))
            made = []
            for key, spec in wanted.items():
                if key in self.egress:
                    continue
                try:
                    self.egress[key] = self._egress_up(spec)
                    made.append(spec)
                except pl.PlumbingError as exc:
                    print(f"flwrazure local cloud: egress gateway {key} not made: {exc}", flush=True)
                    self._egress_down({"netns": self.names.netns("egress|" + key), "links": self._egress_links(spec)})
            self._forget_failed_gateways(made)

    def _forget_failed_gateways(self, made: list[egress.Egress]) -> None:
        """A VM that tried to leave while nothing answered at its gateway keeps that address as unreachable in its
        neighbour table (the next connection fails at once, "No route to host"): a new gateway clears it."""
        answering = {(vnet, address.split("/")[0]) for spec in made for vnet, addresses in spec.legs
                     for address in addresses}
        with self.lock:
            hosts = [(e["netns"], e["gateway"]) for e in self.running.values()
                     if e.get("private") and (e["vnet_id"], e["gateway"]) in answering]
        for netns, gateway in hosts:
            pl.run("ip", "neigh", "flush", "to", gateway, "dev", fw.PRIVATE_IF, netns=netns, check=False)

    def _egress_links(self, spec: egress.Egress) -> list[str]:
        tag = "egress|" + spec.key
        return [self.names.veth_public(tag)] + [self.names.veth_private(f"{tag}|{vnet}") for vnet, _ in spec.legs]

    def _egress_up(self, spec: egress.Egress) -> dict:
        tag = "egress|" + spec.key
        ns = self.names.netns(tag)
        pl.new_netns(ns)
        pl.attach(ns, self.names.veth_public(tag), self.names.public_bridge, egress.PUBLIC_IF,
                  [f"{spec.public_ip}/{pl.PUBLIC_PREFIX_LEN}"], mac=pl.mac_for(f"{tag}|public"))
        legs = []
        for n, (vnet_id, addresses) in enumerate(spec.legs):
            bridge = self.names.vnet_bridge(vnet_id)
            with self.lock:
                pl.ensure_bridge(bridge)
            # the same MAC each time: the VMs' neighbour entries for their gateway stay right when it is made anew
            pl.attach(ns, self.names.veth_private(f"{tag}|{vnet_id}"), bridge, f"vnet{n}", list(addresses),
                      mac=pl.mac_for(f"{tag}|{vnet_id}"))
            legs.append(f"vnet{n}")
        pl.run("sysctl", "-qw", "net.ipv4.ip_forward=1", netns=ns)
        pl.run("iptables-restore", input=egress.ruleset(spec, legs), netns=ns)
        return {"netns": ns, "spec": spec, "links": self._egress_links(spec)}

    def _egress_down(self, entry: dict) -> None:
        pl.delete_netns(entry["netns"])
        present = pl.links()
        for link in entry["links"]:
            if link in present:
                pl.run("ip", "link", "del", link, check=False)

    def resume(self, ctx) -> None:
        """After `local up`: boot again every VM the cloud believes is running."""
        with ctx.store.lock:
            vms = [r["body"] for r in ctx.store.of_type("Microsoft.Compute/virtualMachines")
                   if r["meta"].get("power") in ("running", "starting") and r["meta"].get("booted")]
        for vm in vms:
            for attempt in (1, 2):
                try:
                    self._boot(ctx, vm)
                    break
                except (pl.PlumbingError, KeyError) as exc:
                    # said in the local cloud's log (a VM silently left down after a crash once could not be
                    # explained); a second try after the previous run's processes had a moment to go
                    print(f"flwrazure local cloud: VM {vm.get('name')} not booted again (try {attempt}): {exc!r}",
                          flush=True)
                    if attempt == 1:
                        time.sleep(2)

    def disks(self) -> list[str]:
        return sorted(p.name for p in self.hosts_dir.iterdir() if p.is_dir())

    def close(self) -> None:
        with self.lock:
            keys = list(self.running)
        threads = [threading.Thread(target=self._teardown_host, args=(k,)) for k in keys]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        with self.egress_lock:
            for key in list(self.egress):
                self._egress_down(self.egress.pop(key))
        pl.cleanup(self.names, self.hosts_dir)
        cgroups.cleanup(self.names.tag)  # groups whose last processes left late


def vnet_routes(vnet_prefixes: tuple[str, ...], own: str) -> list[str]:
    """The VNet's IPv4 address spaces a VM routes on its private interface besides its own subnet (every subnet
    of a VNet shares its bridge): on Azure the VNet system route reaches every subnet of the VNet (pure)."""
    mine = ipaddress.ip_interface(own).network
    return [str(ipaddress.ip_network(p, strict=False)) for p in vnet_prefixes
            if ipaddress.ip_network(p, strict=False).version == 4 and ipaddress.ip_network(p, strict=False) != mine]


def _raise_inotify_limit(wanted: int = 8192) -> None:
    """Each booted systemd takes several inotify instances; the kernel default (128) stops at ~20 VMs."""
    path = Path("/proc/sys/fs/inotify/max_user_instances")
    try:
        if int(path.read_text()) < wanted:
            path.write_text(str(wanted))
    except (OSError, ValueError):
        pass


def _inside(nspawn_pid: int, script: str) -> str:
    """Run a shell script inside a booted VM (its PID 1 is nspawn's child), as its root; "" when that fails."""
    child = subprocess.run(["pgrep", "-P", str(nspawn_pid)], capture_output=True, text=True).stdout.split()
    if not child:
        return ""
    try:
        return subprocess.run(["nsenter", "-t", child[0], "-m", "-u", "-i", "-p", "sh", "-c", script],
                              capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""


def _memory_gib(catalog: dict, size: str) -> float | None:
    """The catalog's memory of a VM size (a [family, vCPUs, GiB] row, or a dict with MemoryGB)."""
    row = catalog.get("vm_sizes", {}).get(size)
    if isinstance(row, dict):
        value = row.get("MemoryGB", row.get("memory_gib"))
    elif isinstance(row, (list, tuple)) and len(row) >= 3:
        value = row[2]
    else:
        value = None
    return float(value) if value else None


def _passwd_ids(passwd: Path, user: str) -> tuple[str, str]:
    for line in passwd.read_text().splitlines():
        parts = line.split(":")
        if parts[0] == user:
            return parts[2], parts[3]
    raise pl.PlumbingError(f"user {user} was not created")
