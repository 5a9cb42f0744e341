"""The silo's side of a cross-silo federation (`silo join`, `silo leave`), the pure parts: names of what join
creates, the --host and --data-path checks, the commands that make the SuperNode's key pair on the silo's own
machine and remove what join installed there, and how the silo tells from its own machine that its SuperNode is
online.

A silo owns one record per invitation, $FLWRAZURE_HOME/silos/<cluster>-<silo>/ (silo.json, its SSH key for a VM
join created, the machine's pinned host key). Nothing of the operator's is in it but the invitation."""

from __future__ import annotations

import ipaddress
import re
import shlex

from flwrazure.errors import UsageError
from flwrazure.plan import names
from flwrazure.plan.bootstrap import INSTALL_LOCK
from flwrazure.plan.clientdata import DATA_DIR
from flwrazure.plan.names import VmNames
from flwrazure.plan.services import ENV_FILE, RESTART_MARK, Layout

ROLE = "silo"
SUPERNODE = "flower-supernode"  # the service's name, as start names a cluster's SuperNodes
KEY, CA = "supernode.key", "ca.crt"  # under Layout.base, where start puts them on a cluster's client VMs
FLWR_HOME = ".flwr"  # under the user's home: where the SuperNode keeps the apps of runs
ONLINE_MARK = "SuperNode ID:"  # Flower logs it once the SuperLink accepted the node (its key is registered)

_USER = re.compile(r"[a-z_][a-z0-9_.-]{0,31}")
_HOSTNAME = re.compile(names.HOSTNAME)
_HOME = re.compile(r"/[A-Za-z0-9._/-]{1,255}")


def record_name(cluster: str, silo: str) -> str:
    return f"{cluster}-{silo}"


def resource_group(cluster: str, silo: str) -> str:
    return f"{record_name(cluster, silo)}-silo-rg"


def vm(cluster: str, silo: str) -> VmNames:
    """The one VM `silo join --cloud` creates (index 1: it is a client of the cluster, not its server)."""
    name = f"{record_name(cluster, silo)}-supernode"
    return VmNames(name, ROLE, 1, f"{name}-nic", f"{name}-ip", f"{name}-osdisk")


def parse_host(text: str) -> tuple[str, str]:
    """--host USER@ADDR: (user, address). ADDR is an IPv4/IPv6 address or a DNS name."""
    user, at, addr = (text or "").partition("@")
    if not at or not _USER.fullmatch(user) or not addr:
        raise UsageError(f"--host {text!r}: expected USER@ADDR (e.g. azureuser@203.0.113.7), a Linux user name "
                         "and the machine's address or DNS name.")
    bare = addr[1:-1] if addr.startswith("[") and addr.endswith("]") else addr
    try:
        return user, str(ipaddress.ip_address(bare))
    except ValueError:
        pass
    if not _HOSTNAME.fullmatch(addr) or addr.replace(".", "").isdigit():
        raise UsageError(f"--host {text!r}: {addr!r} is neither an IP address nor a DNS name.")
    return user, addr.lower()


def parse_egress(text: str) -> tuple[str, ...]:
    """--egress IP[,IP…]: the addresses the SuperLink sees the silo's SuperNode connect from."""
    out = []
    for part in (text or "").split(","):
        try:
            out.append(str(ipaddress.ip_address(part.strip())))
        except ValueError:
            raise UsageError(f"--egress {text!r}: {part.strip()!r} is not an IP address (give the address(es) the "
                             "SuperLink sees your machine connect from, comma-separated).") from None
    return tuple(dict.fromkeys(out))


def data_path(text: str) -> str:
    """--data-path PATH: a directory already on the silo's machine; it goes into --node-config and a unit file."""
    path = (text or "").rstrip("/") or "/"
    if not _HOME.fullmatch(path) or "/../" in f"{path}/" or "/./" in f"{path}/":
        raise UsageError(f"--data-path {text!r}: give an absolute path of letters, digits and ._/- (no '..'), "
                         "e.g. /srv/silo-data.")
    return path


def home(text: str, user: str) -> str:
    """The admin user's home directory as the machine reported it (it names the files join installs)."""
    value = (text or "").strip()
    if not _HOME.fullmatch(value) or value == "/":
        raise UsageError(f"the home directory of {user} on the machine is {value!r}: flwrazure installs under a "
                         "home of letters, digits and ._/- only; use another user.")
    return value


def keygen_command(layout: Layout, comment: str) -> str:
    """Make the SuperNode's key pair on the machine, once (ECDSA P-384 in OpenSSH format, as Flower wants; see
    workstation.certs): the private key is created 0600 by ssh-keygen under umask 077 and never leaves the
    machine. Prints the public key line."""
    key = shlex.quote(layout.path(KEY))
    return (f"umask 077 && mkdir -p {shlex.quote(layout.base)} && chmod 700 {shlex.quote(layout.base)} && "
            f"{{ test -s {key} && test -s {key}.pub || {{ rm -f {key} {key}.pub && "
            f"ssh-keygen -q -t ecdsa -b 384 -N '' -C {shlex.quote(comment)} -f {key} </dev/null >/dev/null; }}; }} "
            f"&& cat {key}.pub")


def current_log_command(kind: str, layout: Layout) -> str:
    """The SuperNode's output since its latest start (systemd: its current invocation; the loop: after its latest
    restart line)."""
    if kind == "systemd":
        return (f"i=$(systemctl show -p InvocationID --value {SUPERNODE}); [ -n \"$i\" ] && "
                f"journalctl --no-pager -o cat _SYSTEMD_INVOCATION_ID=$i 2>/dev/null | tail -n 400")
    log = shlex.quote(layout.path(f"{SUPERNODE}.log"))
    return f"tail -n 400 {log} 2>/dev/null"


def node_state(active: str, current_log: str) -> tuple[str, int | None]:
    """(state, node id) of the silo's SuperNode from its own machine: 'online' once Flower logged the node id in
    its current run (the SuperLink accepted its key), 'connecting' while it runs without (not admitted yet: the
    SuperLink refuses it and the service starts it again), 'stopped' when the service does not run. systemd says
    'activating' in the seconds before it starts a refused SuperNode again: that is still 'connecting'."""
    if active not in ("active", "activating"):
        return "stopped", None
    text = current_log.rsplit(RESTART_MARK, 1)[-1]
    found = re.findall(re.escape(ONLINE_MARK) + r"\s*(\d+)", text)
    return ("online", int(found[-1])) if found else ("connecting", None)


def removal_command(layout: Layout, kind: str, data_copied: bool, remove_venv: bool,
                    remove_flwr_home: bool = False) -> str:
    """What `silo leave` runs on a --host machine after stopping the service: the unit (or the loop's crontab
    line), each file join wrote under ~/flwrazure (the key pair, the CA, the environment, the install marker and
    lock, the loop's files, the data it copied), that directory when nothing else is left in it, the Flower venv and
    Flower's own directory (~/.flwr: the apps runs brought) when they were not there before join. Whatever else is
    on the machine stays."""
    steps = []
    if kind == "systemd":
        unit = f"/etc/systemd/system/{SUPERNODE}.service"
        steps.append(f"sudo -n systemctl disable {SUPERNODE} >/dev/null 2>&1; sudo -n rm -f {unit} && "
                     "sudo -n systemctl daemon-reload")
    else:
        script = shlex.quote(layout.path(f"{SUPERNODE}.sh"))
        steps.append(f"if command -v crontab >/dev/null; then crontab -l 2>/dev/null | grep -vF {script} | "
                     "crontab -; fi")
    names = [KEY, f"{KEY}.pub", CA, ENV_FILE, "installed.json", INSTALL_LOCK] + \
        [f"{SUPERNODE}.{x}" for x in ("sh", "log", "pid")]
    if data_copied:
        names.append(DATA_DIR)
    steps.append("rm -rf -- " + " ".join(shlex.quote(layout.path(n)) for n in names))
    steps.append(f"rmdir {shlex.quote(layout.base)} 2>/dev/null")
    if remove_venv:
        steps.append(f"rm -rf -- {shlex.quote(layout.venv)}")
    if remove_flwr_home:
        steps.append(f"rm -rf -- {shlex.quote(layout.home + '/' + FLWR_HOME)}")
    return " ; ".join(steps) + " ; true"
