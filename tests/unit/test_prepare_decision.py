"""`flwrazure local prepare`'s decision (pure): from the tools found and root or not, the apt packages and commands
that bring what the sandbox VMs need, nothing at all when everything is there, the exact command for a non-root
user, and a machine without apt."""

from __future__ import annotations

from flwrazure.localcloud.prepare import TOOLS, decide

ALL = set(TOOLS) | {"apt-get", "sudo"}


def test_everything_there_means_no_apt_call_at_all():
    for root in (True, False):
        d = decide(ALL, root)
        assert (d.action, d.missing, d.packages, d.commands) == ("nothing", (), (), ())
        assert d.line.startswith("Nothing to do")
    assert decide(set(TOOLS), False).action == "nothing"  # apt-get or sudo absent does not matter then


def test_fresh_debian_as_root_installs_every_package_after_an_update():
    d = decide({"apt-get", "ip", "dpkg-deb", "useradd"}, root=True)  # a bare Debian: no ssh, iptables, nspawn
    assert d.action == "install"
    assert d.missing == ("sshd", "ssh-keygen", "iptables-restore", "systemd-nspawn", "mmdebstrap")
    assert d.packages == ("openssh-server", "openssh-client", "iptables", "systemd-container", "mmdebstrap")
    assert d.commands == (("apt-get", "update", "-q"),
                          ("apt-get", "install", "-y", "-q", "--no-install-recommends", "openssh-server",
                           "openssh-client", "iptables", "systemd-container", "mmdebstrap"))
    assert "openssh-server openssh-client iptables systemd-container mmdebstrap" in d.line


def test_one_missing_tool_one_package():
    d = decide(ALL - {"mmdebstrap"}, root=True)
    assert d.packages == ("mmdebstrap",)
    assert d.commands[-1][-1] == "mmdebstrap" and d.commands[0] == ("apt-get", "update", "-q")
    d = decide(ALL - {"ip"}, root=True)
    assert d.packages == ("iproute2",)


def test_not_root_prints_the_exact_command():
    d = decide(ALL - {"sshd", "systemd-nspawn"}, root=False)
    assert d.action == "ask" and d.commands == ()
    assert d.packages == ("openssh-server", "systemd-container")
    assert ("`sudo apt-get update -q && sudo apt-get install -y -q --no-install-recommends openssh-server "
            "systemd-container`") in d.line
    assert "\n" not in d.line and "sshd" in d.line and "systemd-nspawn" in d.line


def test_not_root_without_sudo():
    d = decide(ALL - {"sudo", "iptables-restore"}, root=False)
    assert d.action == "ask"
    assert "`apt-get update -q && apt-get install -y -q --no-install-recommends iptables`" in d.line
    assert "sudo" not in d.line


def test_no_apt_get():
    for root in (True, False):
        d = decide({"sudo", "ip"}, root)
        assert d.action == "unsupported" and d.commands == ()
        assert "no apt-get" in d.line and "package manager" in d.line
        assert "openssh-server" in d.line and "mmdebstrap" in d.line
