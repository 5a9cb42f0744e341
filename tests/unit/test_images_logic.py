"""The local cloud's image catalog (which root filesystem an image reference boots, or why none), the Release file
of the images' flat apt repository, and the cgroup a process is in (cgroup v1 and v2 lines of /proc/self/cgroup)."""

from __future__ import annotations

import email.utils
import hashlib
import time

import pytest

from flwrazure.localcloud import images
from flwrazure.localcloud.hosts import cgroups


def _ref(publisher: str, offer: str, sku: str, version: str = "latest") -> dict:
    return {"publisher": publisher, "offer": offer, "sku": sku, "version": version}


@pytest.mark.parametrize("ref,flavour", [
    (_ref("Canonical", "ubuntu-24_04-lts", "server"), "ubuntu"),
    (_ref("canonical", "UBUNTU-24_04-LTS", "Server", "24.04.202411030"), "ubuntu"),
    (_ref("Canonical", "ubuntu-24_04-lts", "server-gen1"), "ubuntu"),
    (_ref("Canonical", "0001-com-ubuntu-server-jammy", "22_04-lts-gen2"), "ubuntu"),
    (_ref("Canonical", "0001-com-ubuntu-server-jammy", "22_04-lts"), "ubuntu"),
    (_ref("Debian", "debian-12", "12-gen2"), "debian"),
])
def test_kind_of_bootable_images(ref, flavour):
    kind = images.kind_of(ref)
    assert (kind.base, kind.flavour, kind.why_not) == (images.BASE, flavour, None)


@pytest.mark.parametrize("ref", [_ref("Canonical", "ubuntu-24_04-lts", "server-arm64"),
                                 _ref("Canonical", "0001-com-ubuntu-server-jammy", "22_04-lts-arm64")])
def test_kind_of_arm64_is_api_only(ref):
    kind = images.kind_of(ref)
    assert kind.base is None
    assert "arm64" in kind.why_not and "API only" in kind.why_not


def test_kind_of_unknown_image_boots_the_default():
    assert images.kind_of(_ref("SomePublisher", "some-offer", "some-sku")).base == images.BASE
    assert images.kind_of({}).base == images.BASE


def test_release_file_fields_and_hashes():
    packages = b"Package: python3-venv\nVersion: 3.11.2-1+b1\nFilename: ./python3-venv_3.11.2-1+b1_amd64.deb\n"
    before = time.time()
    text = images.release(packages)
    lines = text.splitlines()
    fields = dict(line.split(": ", 1) for line in lines if not line.startswith(" ") and ": " in line)
    assert fields["Suite"] == images.SUITE and fields["Origin"] and fields["Label"]
    # apt refuses a Release dated in the future ("not valid yet"): RFC 1123 in UTC, now
    date = email.utils.parsedate_to_datetime(fields["Date"])
    assert fields["Date"].endswith(" UTC") and abs(date.timestamp() - before) < 5
    assert lines[lines.index("MD5Sum:") + 1] == f" {hashlib.md5(packages).hexdigest()} {len(packages)} Packages"
    assert lines[lines.index("SHA256:") + 1] == f" {hashlib.sha256(packages).hexdigest()} {len(packages)} Packages"
    assert text.endswith("\n")


V1 = """12:pids:/system.slice/flwrazure.service
11:cpuset:/elsewhere
10:memory:/system.slice/flwrazure.service
4:cpu,cpuacct:/system.slice/cpu-group
1:name=systemd:/system.slice/flwrazure.service
0::/system.slice/flwrazure.service
"""
V2 = "0::/user.slice/user-0.slice/session-3.scope\n"


def test_own_cgroup_v1():
    assert cgroups._own("memory", V1) == "system.slice/flwrazure.service"
    assert cgroups._own("cpu", V1) == "system.slice/cpu-group"  # cpu,cpuacct: not cpuset's line
    assert cgroups._own("cpuacct", V1) == "system.slice/cpu-group"
    assert cgroups._own("cpuset", V1) == "elsewhere"
    assert cgroups._own("hugetlb", V1) == ""  # not mounted: the root
    assert cgroups._own("systemd", V1) == ""  # name=systemd is not a controller


def test_own_cgroup_v2_and_root():
    assert cgroups._own("", V2) == "user.slice/user-0.slice/session-3.scope"
    assert cgroups._own("memory", V2) == ""
    assert cgroups._own("", "0::/\n") == ""
    assert cgroups._own("memory", "5:memory:/\n") == ""
