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


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([sys.executable, "-m", "flwrazure", *args], capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL, env={**os.environ, "FLWRAZURE_CLOUD": "", **env})


def test_help_never_sends_a_local_cloud_user_to_azure():
    """After `local up`, every create-cluster/up example in the top-level and `local` help says --cloud local;
    the Azure session says --cloud azure."""
    for args in ((), ("--help",), ("local", "--help"), ("create-cluster", "--help"), ("up", "--help")):
        lines = _cli(*args).stdout.splitlines()
        made = [line for line in lines if ("flwrazure create-cluster" in line or "flwrazure up " in line)
                and not line.startswith("Usage:")]
        assert made and all("--cloud local" in line or "--cloud azure" in line for line in made), lines
        after_local = lines[next(i for i, line in enumerate(lines) if "flwrazure local up" in line):]
        assert all("--cloud local" in line for line in after_local if line in made), lines


def test_commands_of_a_recorded_cluster_do_not_mention_cloud_in_their_help():
    for command in ("open-ports", "start", "status", "list", "scale", "pause", "resume", "logs", "ssh", "doctor",
                    "teardown"):
        assert "--cloud" not in _cli(command, "--help").stdout, command
    assert "FLWRAZURE_CLOUD" in _cli("create-cluster", "--help").stdout


def test_bare_flwrazure_is_help_and_success():
    bare = _cli()
    assert bare.returncode == 0 and "Commands:" in bare.stdout and bare.stderr == ""


def test_a_mistyped_command_gets_did_you_mean():
    for typed, meant in (("stauts", "'status'"), ("crate-cluster", "'create-cluster'"), ("teardwn", "'teardown'"),
                         ("lst", "'list'")):
        result = _cli(typed)
        assert result.returncode == 2 and f"Did you mean {meant}" in result.stderr, result.stderr
    assert "Did you mean" not in _cli("zzzz").stderr  # nothing close: no guess


def test_short_options_as_az_spells_them():
    for command, options in (("create-cluster", ("-g, --resource-group", "-l, --location", "-o, --output")),
                             ("up", ("-g, --resource-group", "-l, --location")), ("teardown", ("-y, --yes",)),
                             ("scale", ("-y, --yes", "-o, --output")), ("status", ("-v, --verbose", "-o, --output"))):
        out = _cli(command, "--help").stdout
        assert all(o in out for o in options), (command, out)
    assert "-y, --yes" in _cli("local", "reset", "--help").stdout


def test_flwrazure_cloud_must_be_local_or_azure():
    result = _cli("create-cluster", FLWRAZURE_CLOUD="Local ")
    assert result.returncode == 2 and result.stderr.strip() == \
        "Error: FLWRAZURE_CLOUD='Local': set it to 'local' or 'azure' (or unset it)."
