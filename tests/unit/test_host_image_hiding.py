"""What a VM booting this machine's OS must not see (pure parts of hosts/nspawn.py)."""

from flwrazure.localcloud.hosts.nspawn import HIDDEN, hidden_dirs, scrub_shadow


def test_secret_folders_are_hidden_wherever_they_are():
    found = hidden_dirs(["/var/lib/flwrazure/local", "/opt/fz-home/", "/tmp/x/local", "/root/.flwrazure"])
    assert found == HIDDEN + ["var/lib/flwrazure/local", "opt/fz-home"]  # under /tmp and /root: hidden already


def test_a_folder_the_os_needs_is_never_hidden():
    for folder in ("/", "/var/lib", "/usr", "/etc", "/var", "/usr/lib", "relative/path", "/../.."):
        assert hidden_dirs([folder]) == HIDDEN, folder


def test_shadow_keeps_no_password_hash():
    text = ("root:$y$j9T$abc$def:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n"
            "azureuser:*:20000:0:99999:7:::\nlocked:!$6$x$y:1::::::\nsudo:!::\n")
    out = scrub_shadow(text)
    assert out == ("root:*:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n"
                   "azureuser:*:20000:0:99999:7:::\nlocked:*:1::::::\nsudo:!::\n")
