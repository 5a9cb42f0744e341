"""The flat apt repository beside a VM image (images.write_repository + images.release), read by the real apt of
this machine from a file:// source in a temporary apt state: apt accepts the Release file, checks the Packages index
against its hashes and downloads the package. Host-free (no root needed, no network)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from flwrazure.localcloud import images

pytestmark = pytest.mark.skipif(shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None,
                                reason="needs apt-get and dpkg-deb")


def _deb(folder: Path, repo: Path, name: str, version: str) -> Path:
    pkg = folder / f"build-{name}"
    (pkg / "DEBIAN").mkdir(parents=True)
    (pkg / "DEBIAN" / "control").write_text(f"Package: {name}\nVersion: {version}\nArchitecture: all\n"
                                            "Maintainer: flwrazure tests <tests@example.invalid>\n"
                                            "Description: a package of the apt repository test\n")
    (pkg / "usr" / "share" / name).mkdir(parents=True)
    (pkg / "usr" / "share" / name / "README").write_text(f"{name} {version}\n")
    deb = repo / f"{name}_{version}_all.deb"
    subprocess.run(["dpkg-deb", "--build", "-Zgzip", str(pkg), str(deb)], check=True, capture_output=True)
    return deb


def _apt(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    options = ["-o", f"Dir::State={tmp / 'state'}", "-o", f"Dir::State::status={tmp / 'status'}",
               "-o", f"Dir::Cache={tmp / 'cache'}", "-o", f"Dir::Etc::SourceList={tmp / 'sources.list'}",
               "-o", f"Dir::Etc::SourceParts={tmp / 'parts'}", "-o", f"Dir::Etc::Preferences={tmp / 'prefs'}",
               "-o", f"Dir::Etc::PreferencesParts={tmp / 'parts'}", "-o", "Debug::NoLocking=1",
               "-o", "APT::Sandbox::User=root", "-q"]
    return subprocess.run([args[0], *options, *args[1:]], capture_output=True, text=True, cwd=tmp / "download",
                          timeout=60)


@pytest.fixture
def apt_root(tmp_path):
    for sub in ("state/lists/partial", "cache/archives/partial", "parts", "download", "repo"):
        (tmp_path / sub).mkdir(parents=True)
    (tmp_path / "status").write_text("")
    (tmp_path / "sources.list").write_text(f"deb [trusted=yes] file://{tmp_path / 'repo'} ./\n")
    return tmp_path


def test_apt_reads_the_flat_repository(apt_root):
    _deb(apt_root, apt_root / "repo", "fz-tiny", "1.0")
    _deb(apt_root, apt_root / "repo", "fz-other", "2.3-1")
    images.write_repository(apt_root / "repo")
    update = _apt(apt_root, "apt-get", "update")
    assert update.returncode == 0 and "W:" not in update.stderr and "E:" not in update.stderr, update.stderr
    policy = _apt(apt_root, "apt-cache", "policy", "fz-tiny", "fz-other")
    assert "Candidate: 1.0" in policy.stdout and "Candidate: 2.3-1" in policy.stdout, policy.stdout
    download = _apt(apt_root, "apt-get", "download", "fz-tiny")
    assert download.returncode == 0, download.stderr
    assert (apt_root / "download" / "fz-tiny_1.0_all.deb").is_file()


def test_apt_refuses_a_release_that_does_not_match(apt_root):
    """The check above can fail: a Packages index changed after the Release file was written is refused."""
    _deb(apt_root, apt_root / "repo", "fz-tiny", "1.0")
    images.write_repository(apt_root / "repo")
    packages = apt_root / "repo" / "Packages"
    packages.write_text(packages.read_text().replace("Version: 1.0", "Version: 1.1"))
    update = _apt(apt_root, "apt-get", "update")
    assert "Hash Sum mismatch" in update.stdout + update.stderr
    assert "Candidate: 1.1" not in _apt(apt_root, "apt-cache", "policy", "fz-tiny").stdout
