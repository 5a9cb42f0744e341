"""The VMs' cloud-init user data (osProfile.customData): Flower installed during the first boot, while ARM still
creates the other VMs and before any SSH round trip (pure).

cloud-init runs it after the osProfile's user and keys (its init stage ends with the `ready` signal that completes
the VM create on Azure), so the install overlaps what the operator would otherwise wait for. What it does:
a venv without ensurepip (Ubuntu's image lacks python3-venv; apt would wait for the first-boot apt job), uv from
the package index installing `flwr==<version>`, the --extra-pip packages and pip into it, then the marker `start`
compares.
customData is stored on the VM and in the deployment's inputs, so nothing secret goes in: no index URL with
credentials, no `pkg @ URL` requirement (a URL may carry a token); those are left to `start`'s SSH bootstrap."""

from __future__ import annotations

import base64
import json
import re
import shlex
from urllib.parse import urlsplit

from flwrazure.plan import bootstrap, services

# Azure: "The maximum length of the binary array is 65535 bytes" (the decoded customData); base64 of that is
# 87380 characters, the limit the compute API names in its InvalidParameter error
MAX_BYTES = 65535
SCRIPT = "/usr/local/lib/flwrazure/bootstrap.sh"
INSTALLER = "/usr/local/lib/flwrazure/install.py"
_APT_NAME = re.compile(r"[a-z0-9][a-z0-9+.-]{0,99}")

# Runs with the image's python3 (stdlib only). The package index: the one pip is configured with on the VM
# (PIP_INDEX_URL, /etc/pip.conf: the local cloud's VMs name their region's mirror there), else argv[2]. From it the
# newest uv wheel for this machine (Flower depends on uv anyway), its sha256 checked when the index gives one, and
# uv's binary taken out of it; uv installs the requirements (argv[3:]) and pip into the venv argv[1]. Measured in the
# bare image against one index: venv + uv + flwr 1.42.0 in 10 s, the same with pip's wheel and pip in 21 s.
_INSTALLER = r'''import configparser, hashlib, io, os, platform, re, subprocess, sys, tempfile, urllib.parse, urllib.request
import zipfile
venv, index, wanted = sys.argv[1], sys.argv[2], sys.argv[3:]
conf = configparser.ConfigParser()
conf.read("/etc/pip.conf")
index = os.environ.get("PIP_INDEX_URL") or conf.get("global", "index-url", fallback="") or index
if not index:
    sys.exit("no package index: neither the VM's pip configuration nor the user data names one")
page_url = index.rstrip("/") + "/uv/"
page = urllib.request.urlopen(page_url, timeout=60).read().decode()
best = None
for href in re.findall(r'href="([^"]+)"', page):
    url = urllib.parse.urljoin(page_url, href.replace("&amp;", "&"))
    m = re.search(r"/uv-(\d+(?:\.\d+)*)-py3-none-[^/#]*manylinux[^/#]*" + platform.machine() +
                  r"[^/#]*\.whl(#sha256=([0-9a-f]{64}))?$", url)
    if m and (best is None or tuple(map(int, m.group(1).split("."))) > best[0]):
        best = (tuple(map(int, m.group(1).split("."))), url.split("#")[0], m.group(3))
if best is None:
    sys.exit(f"no uv wheel for {platform.machine()} listed at {page_url}")
data = urllib.request.urlopen(best[1], timeout=300).read()
if best[2] and hashlib.sha256(data).hexdigest() != best[2]:
    sys.exit(f"{best[1]}: sha256 mismatch")
wheel = zipfile.ZipFile(io.BytesIO(data))
uv = os.path.join(tempfile.mkdtemp(), "uv")
with open(uv, "wb") as f:
    f.write(wheel.read(next(n for n in wheel.namelist() if n.endswith(".data/scripts/uv"))))
os.chmod(uv, 0o755)
subprocess.run([uv, "pip", "install", "-q", "--no-cache", "--python", os.path.join(venv, "bin", "python"),
                "--index-url", index, "--", *wanted, "pip"], check=True)
'''


def eligible(extra: list[str] | tuple[str, ...], index_url: str | None) -> bool:
    """Whether the install can go into user data at all: nothing that may carry a secret (an index URL with
    credentials, a `pkg @ URL` requirement)."""
    if index_url and urlsplit(index_url).username is not None:
        return False
    return not any("@" in requirement for requirement in extra)


def cloud_config(version: str, extra: list[str] | tuple[str, ...], admin_user: str, index_url: str | None = None,
                 default_index: str | None = None, apt: tuple[str, ...] = ()) -> str:
    """The #cloud-config text (JSON, which is YAML too: cloud-init reads it, and nothing here needs a YAML writer).
    index_url: the cluster's --index-url (no credentials: see eligible); default_index: the index when the VM's pip
    names none (the public one, as pip on the workstation knows it); apt: packages
    cloud-init installs first (none are needed: the hook for what a VM truly needs, and for tests)."""
    for name in apt:
        if not _APT_NAME.fullmatch(name):
            raise ValueError(f"not an apt package name: {name!r}")
    layout = services.Layout(f"/home/{admin_user}")
    q = shlex.quote
    marker = bootstrap.marker_text(version, list(extra), index_url)
    env = f"PIP_INDEX_URL={q(index_url)} " if index_url else ""
    packages = " ".join(q(p) for p in [f"flwr=={version}", *extra])
    script = "\n".join([
        "#!/bin/sh",
        "# flwrazure: Flower's venv on the first boot (cloud-init runcmd); start checks the marker it leaves",
        "set -eu",
        f"mkdir -p {q(layout.base)}",
        f"chmod 700 {q(layout.base)}",
        f"rm -rf {q(layout.venv)}",
        f"python3 -m venv --without-pip {q(layout.venv)}",
        f"{env}python3 {INSTALLER} {q(layout.venv)} {q(default_index or '')} {packages}",
        f"printf %s {q(marker)} > {q(layout.path('installed.json'))}",
        f"chmod 600 {q(layout.path('installed.json'))}",
        f"chown -R {q(admin_user)}: {q(layout.base)} {q(layout.venv)}",
        ""])
    config: dict = {
        "write_files": [{"path": INSTALLER, "permissions": "0644", "content": _INSTALLER},
                        {"path": SCRIPT, "permissions": "0755", "content": script}],
        "runcmd": [[SCRIPT]],
    }
    if apt:
        config["packages"] = list(apt)
    return "#cloud-config\n" + json.dumps(config, indent=1) + "\n"


def custom_data(text: str) -> str:
    """customData as the compute API takes it (base64); ValueError when it is larger than Azure accepts."""
    raw = text.encode()
    if len(raw) > MAX_BYTES:
        raise ValueError(f"the VMs' user data is {len(raw)} bytes; Azure takes at most {MAX_BYTES}")
    return base64.b64encode(raw).decode()


STATUS_TIMEOUT = 124  # `timeout`'s exit code: cloud-init still running at the deadline


def wait_command(timeout: int) -> str:
    """Wait for cloud-init (where there is one) and print its status as JSON; `none` when the machine has none."""
    return (f"if command -v cloud-init >/dev/null 2>&1; then timeout {int(timeout)} cloud-init status --wait "
            "--format json 2>/dev/null; else echo none; fi")


def fallback_reason(exit_code: int, out: str, has_script: bool, has_marker: bool, timeout: int) -> str | None:
    """Why start installs Flower over SSH on this VM (None: nothing to fall back from: the user data did it, or an
    earlier start did). From the exit code and output of wait_command (cloud-init's: 0 done, 1 error, 2 done with
    recoverable errors) and whether the user data's script and the install marker are on the VM."""
    if out.strip() == "none":
        return None if has_marker else "no cloud-init on this machine"
    if exit_code == STATUS_TIMEOUT:
        return f"cloud-init was still running after {timeout} s"
    try:
        status = json.loads(out[out.index("{"):]) if "{" in out else {}
    except ValueError:
        status = {}
    if has_script and (exit_code == 1 or status.get("status") == "error"):
        errors = [str(e) for e in status.get("errors") or []]
        modules = [m.group(1) for e in errors if (m := re.match(r"\('([\w-]+)'", e))]
        what = f" in {', '.join(dict.fromkeys(modules))}" if modules else ""
        first = f": {errors[0][:200]}" if errors else ""
        return f"its user data failed (cloud-init status: error{what}{first})"
    if has_marker:
        return None
    if not has_script:
        return ("it has no flwrazure user data (created before flwrazure sent it, or --index-url/--extra-pip "
                "carry a URL, which stays out of user data)")
    return "its user data did not install Flower (see /var/log/cloud-init-output.log on the VM)"
