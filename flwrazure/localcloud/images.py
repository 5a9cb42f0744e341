"""VM images of the local cloud: the marketplace image a VM names maps to a root filesystem built once from Debian's
packages (mmdebstrap, through this machine's configured apt sources) and cached under the images folder
($FLWRAZURE_IMAGES, default $FLWRAZURE_HOME/local/images). Each VM's disk is a copy-on-write overlay of it.

The image is as bare as Azure's Ubuntu Server image: systemd, openssh-server, sudo, python3 without venv/ensurepip/pip,
no compilers, the PEP 668 marker. Beside it lies an apt repository with the packages a VM may need to add (at least
python3-venv and its dependencies), served to the VMs from the public gateway like a region's package mirror."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

BASE = "bookworm-cloud"
SUITE = "bookworm"
VERSION = 1  # bump when what the build puts in the image changes: a cached image of another version is rebuilt
INCLUDE = ["systemd", "systemd-sysv", "dbus", "openssh-server", "sudo", "python3", "iproute2", "ca-certificates",
           "cron", "procps"]
# what a VM may add later through apt (downloaded with its dependencies into the image's repository)
EXTRA_PACKAGES = ["python3-venv"]


@dataclass(frozen=True)
class ImageKind:
    """How the local cloud boots one marketplace image."""

    base: str | None  # root filesystem name, None: this machine cannot boot it (the VM is API only)
    flavour: str  # "ubuntu": first-boot apt activity like Ubuntu's unattended-upgrades; "debian": none
    why_not: str | None = None


KINDS = {
    "canonical:ubuntu-24_04-lts:server": ImageKind(BASE, "ubuntu"),
    "canonical:ubuntu-24_04-lts:server-gen1": ImageKind(BASE, "ubuntu"),
    "canonical:0001-com-ubuntu-server-jammy:22_04-lts-gen2": ImageKind(BASE, "ubuntu"),
    "canonical:0001-com-ubuntu-server-jammy:22_04-lts": ImageKind(BASE, "ubuntu"),
    "debian:debian-12:12-gen2": ImageKind(BASE, "debian"),
    "canonical:ubuntu-24_04-lts:server-arm64": ImageKind(
        None, "ubuntu", "an arm64 image cannot boot on this x86_64 machine: the VM exists in the API only"),
}


def kind_of(image_reference: dict) -> ImageKind:
    key = ":".join(str(image_reference.get(k, "")) for k in ("publisher", "offer", "sku")).lower()
    if key in KINDS:
        return KINDS[key]
    if "arm64" in key:
        return ImageKind(None, "ubuntu", "an arm64 image cannot boot on this x86_64 machine: the VM is API only")
    return ImageKind(BASE, "ubuntu")


def images_dir(local_dir: Path) -> Path:
    value = os.environ.get("FLWRAZURE_IMAGES")
    return Path(value).expanduser() if value else local_dir / "images"


def available() -> str | None:
    """None when images can be built (or are already there), else why not."""
    if shutil.which("mmdebstrap") is None:
        return "mmdebstrap is not installed (apt-get install mmdebstrap, or `flwrazure local prepare`)"
    if shutil.which("dpkg-deb") is None:
        return "dpkg-deb is not installed"
    return None


class Image:
    """A built image: its root filesystem, its apt repository and what is known about it (Python version)."""

    def __init__(self, path: Path):
        self.path = path
        self.rootfs = path / "rootfs"
        self.apt = path / "apt"
        self.meta = json.loads((path / "image.json").read_text())

    @property
    def python(self) -> str:
        return self.meta["python"]


def _ready(path: Path) -> bool:
    try:
        return json.loads((path / "image.json").read_text()).get("version") == VERSION
    except (OSError, ValueError):
        return False


def cached(folder: Path, name: str = BASE) -> bool:
    return _ready(folder / name)


def ensure(folder: Path, name: str = BASE, say: Callable[[str], None] | None = None) -> Image:
    """The image, built first if it is not cached yet (one build at a time per folder, even across processes)."""
    path = folder / name
    if _ready(path):
        return Image(path)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _ready(path):
            why = available()
            if why:
                raise RuntimeError(f"cannot build the VM image {name}: {why}")
            _build(folder, path, say or (lambda _: None))
    return Image(path)


def _run(*cmd: str, cwd: Path | None = None) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, stdin=subprocess.DEVNULL, timeout=1800)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"{' '.join(cmd[:3])} … failed (exit {proc.returncode}): {' | '.join(tail)}")
    return proc.stdout


def _build(folder: Path, path: Path, say: Callable[[str], None]) -> None:
    start = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix=".build-", dir=folder))
    try:
        rootfs, apt = work / "rootfs", work / "apt"
        say(f"Building the VM image {path.name} (Debian {SUITE}, minimal, like a cloud image); once, ~1 min")
        _run("mmdebstrap", "--variant=minbase", "--quiet", f"--include={','.join(INCLUDE)}", SUITE, str(rootfs))
        say(f"  base system ready ({time.monotonic() - start:.0f} s); fetching packages VMs may add: "
            f"{', '.join(EXTRA_PACKAGES)}")
        _run("chroot", str(rootfs), "apt-get", "update", "-qq")
        _run("chroot", str(rootfs), "env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "-qq",
             "--download-only", *EXTRA_PACKAGES)
        apt.mkdir()
        for deb in (rootfs / "var" / "cache" / "apt" / "archives").glob("*.deb"):
            shutil.move(str(deb), apt / deb.name)
        write_repository(apt)
        python = _run("chroot", str(rootfs), "python3", "-c",
                      "import sys; print('%d.%d' % sys.version_info[:2])").strip()
        _strip(rootfs)
        (work / "image.json").write_text(json.dumps({
            "name": path.name, "version": VERSION, "suite": SUITE, "python": python, "include": INCLUDE,
            "extra_packages": sorted(p.name for p in apt.glob("*.deb")), "built": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                                                    time.gmtime()),
            "build_seconds": round(time.monotonic() - start, 1)}, indent=2))
        if path.exists():
            shutil.rmtree(path)
        os.rename(work, path)
        size = _run("du", "-sm", str(path)).split()[0]
        say(f"  image ready in {time.monotonic() - start:.0f} s ({size} MB, Python {python}): {path}")
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)


def _strip(rootfs: Path) -> None:
    """What makes one built root filesystem a generalized image: no host keys, no machine id, no package lists,
    no package source but the region's mirror (each VM gets its own of the first two on first boot)."""
    for key in (rootfs / "etc" / "ssh").glob("ssh_host_*"):
        key.unlink()
    (rootfs / "etc" / "machine-id").write_text("")
    for sub in ("var/lib/apt/lists", "var/cache/apt/archives"):
        for entry in (rootfs / sub).glob("*"):
            if entry.is_file():
                entry.unlink()
    for f in (rootfs / "var" / "cache" / "apt").glob("*.bin"):
        f.unlink()
    for f in (rootfs / "etc" / "apt" / "sources.list.d").glob("*"):
        f.unlink()
    (rootfs / "etc" / "apt" / "sources.list").write_text("")  # each VM's disk gets the region's mirror


def write_repository(apt: Path) -> None:
    """A flat apt repository (Packages + Release) over the .deb files in `apt`."""
    stanzas = []
    for deb in sorted(apt.glob("*.deb")):
        control = _run("dpkg-deb", "-f", str(deb)).strip()
        data = deb.read_bytes()
        stanzas.append(f"{control}\nFilename: ./{deb.name}\nSize: {len(data)}\n"
                       f"MD5sum: {hashlib.md5(data).hexdigest()}\nSHA256: {hashlib.sha256(data).hexdigest()}\n")
    packages = "\n".join(stanzas).encode()
    (apt / "Packages").write_bytes(packages)
    (apt / "Release").write_text(release(packages))


def release(packages: bytes) -> str:
    """The Release file of a flat repository holding one Packages index (pure)."""
    date = time.strftime("%a, %d %b %Y %H:%M:%S UTC", time.gmtime())
    return (f"Origin: flwrazure local cloud\nLabel: flwrazure\nSuite: {SUITE}\nDate: {date}\n"
            f"MD5Sum:\n {hashlib.md5(packages).hexdigest()} {len(packages)} Packages\n"
            f"SHA256:\n {hashlib.sha256(packages).hexdigest()} {len(packages)} Packages\n")
