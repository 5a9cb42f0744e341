"""The lines `flwrazure local az` prints: the service principal's secret is neither in them nor on az's command
line (az reads it from a 0600 file through `--password=@FILE`)."""

import shlex
import stat

from flwrazure.localcloud import azcli

INFO = {"endpoint": "https://127.0.0.1:47443", "ca_bundle": "/x/ca.pem", "tenant_id": "t", "client_id": "c",
        "client_secret": "-dash'quote"}


def test_login_reads_the_secret_from_a_private_file(tmp_path):
    path = azcli.write_secret(INFO, str(tmp_path / "az"))
    assert open(path).read() == INFO["client_secret"]
    assert stat.S_IMODE((tmp_path / "az" / azcli.SECRET_FILE).stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "az").stat().st_mode) == 0o700
    login = azcli.setup_commands(INFO, path)[2]
    assert f"--password=@{path}" in login and not any(INFO["client_secret"] in a for a in login)


def test_script_exports_the_environment_and_holds_no_secret():
    text = azcli.script(INFO, "/home/u/.flwrazure/local/az", "/home/u/.flwrazure/local/az/s")
    assert "export AZURE_CORE_COLLECT_TELEMETRY=false" in text
    assert "export AZURE_CORE_INSTANCE_DISCOVERY=false" in text
    assert "export REQUESTS_CA_BUNDLE=/x/ca.pem" in text
    login_line = next(line for line in text.splitlines() if line.startswith("az login"))
    assert shlex.split(login_line)[5] == "--password=@/home/u/.flwrazure/local/az/s"
    assert INFO["client_secret"] not in text and "dash" not in text
