import subprocess
import sys

PROBE = """
import sys
sys.argv = ["flwrazure"] + sys.argv[1:]
from flwrazure.cli import main
try:
    main()
except SystemExit:
    pass
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("azure", "fabric", "paramiko", "rich", "cryptography"))
print("HEAVY:", ",".join(heavy))
"""


def _heavy(*args: str) -> str:
    out = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=60).stdout
    return out.split("HEAVY:")[-1].strip()


def test_help_and_version_import_no_sdk():
    assert _heavy("--help") == ""
    assert _heavy("--version") == ""
    assert _heavy("local", "--help") == ""


def test_help_lists_local():
    out = subprocess.run([sys.executable, "-m", "flwrazure", "--help"], capture_output=True, text=True).stdout
    assert "local" in out and "Run Flower federations" in out


def test_day2_commands_help_imports_no_sdk():
    for command in ("scale", "pause", "resume", "logs", "ssh", "doctor"):
        assert _heavy(command, "--help") == "", command
