"""The lines `flwrazure local az` prints: a secret starting with '-' must stay one argument."""

import shlex

from flwrazure.localcloud import azcli

INFO = {"endpoint": "https://127.0.0.1:47443", "ca_bundle": "/x/ca.pem", "tenant_id": "t", "client_id": "c",
        "client_secret": "-dash'quote"}


def test_login_keeps_an_awkward_secret_in_one_argument():
    login = azcli.setup_commands(INFO)[2]
    assert "--password=-dash'quote" in login and "--password" not in login


def test_script_exports_the_environment_and_quotes_everything():
    text = azcli.script(INFO, "/home/u/.flwrazure/local/az")
    assert "export AZURE_CORE_COLLECT_TELEMETRY=false" in text
    assert "export AZURE_CORE_INSTANCE_DISCOVERY=false" in text
    assert "export REQUESTS_CA_BUNDLE=/x/ca.pem" in text
    login_line = next(line for line in text.splitlines() if line.startswith("az login"))
    assert shlex.split(login_line)[5] == "--password=-dash'quote"
