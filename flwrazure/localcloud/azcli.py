"""The Azure CLI against the local cloud: the shell lines that point `az` at it (`flwrazure local az` prints them).

`az` keeps its sign-in, clouds and settings in AZURE_CONFIG_DIR; a folder of the local cloud's own keeps the user's
real `az login` untouched. The CLI then needs:
- the local cloud registered as a cloud: `az cloud register --endpoint-resource-manager` reads the endpoint's public
  metadata document (sign-in endpoint, token audience) and `az cloud set` makes it the active one;
- the local CA trusted (REQUESTS_CA_BUNDLE: az talks HTTPS through requests);
- nothing sent anywhere else: telemetry off (AZURE_CORE_COLLECT_TELEMETRY=false) and MSAL's instance discovery off
  (AZURE_CORE_INSTANCE_DISCOVERY=false; otherwise the sign-in library asks Microsoft's public login host whether the
  sign-in endpoint is a known authority);
- a service-principal sign-in with the local cloud's client id and secret. The secret is never on a command line
  (every user sees argv in `ps`) nor in the printed lines: az expands an argument `--password=@FILE` to the
  file's content before parsing (azure.cli.core, the `@file` convention of all its arguments), so the secret sits
  in a 0600 file in the config folder. (`az login` reads no environment variable for it; a certificate would need
  a client-assertion sign-in the local cloud's token endpoint does not take.)
One request `az` makes by itself cannot be switched off by any setting: the first command in a fresh config folder
checks once for a newer az release (a HEAD with a 1 s timeout to az's release storage; offline it just fails). It
is skipped when the folder's versionCheck.json already names the installed release.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

CLOUD = "FlwrazureLocal"
SECRET_FILE = "service-principal.secret"


def write_secret(info: dict, config_dir: str) -> str:
    """The client secret in a file only its owner can read (created so before its first byte), for az's
    `--password=@FILE`; returns its path."""
    folder = Path(config_dir)
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    path = folder / SECRET_FILE
    tmp = folder / f".{SECRET_FILE}.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(info["client_secret"])
    os.replace(tmp, path)
    return str(path)


def environment(info: dict, config_dir: str) -> dict[str, str]:
    return {"AZURE_CONFIG_DIR": config_dir, "AZURE_CORE_COLLECT_TELEMETRY": "false",
            "AZURE_CORE_INSTANCE_DISCOVERY": "false", "AZURE_CORE_SURVEY_MESSAGE": "false",
            "REQUESTS_CA_BUNDLE": info["ca_bundle"]}


def setup_commands(info: dict, secret_file: str) -> list[list[str]]:
    """The az commands that register the local cloud, make it active and sign in (run with `environment`); the
    secret is read by az from `secret_file` (write_secret)."""
    return [["az", "cloud", "register", "--name", CLOUD, "--endpoint-resource-manager", info["endpoint"],
             "--only-show-errors"],
            ["az", "cloud", "set", "--name", CLOUD, "--only-show-errors"],
            ["az", "login", "--service-principal", "--username", info["client_id"],
             f"--password=@{secret_file}", "--tenant", info["tenant_id"], "--output", "none",
             "--only-show-errors"]]


def update_command(info: dict) -> list[str]:
    """When the cloud is registered already (e.g. the endpoint's port changed): update it instead."""
    return ["az", "cloud", "update", "--name", CLOUD, "--endpoint-resource-manager", info["endpoint"],
            "--only-show-errors"]


def script(info: dict, config_dir: str, secret_file: str) -> str:
    """Bash lines for `eval "$(flwrazure local az)"` (no secret in them: see write_secret)."""
    lines = ["# the Azure CLI against the local cloud; run: eval \"$(flwrazure local az)\""]
    lines += [f"export {k}={shlex.quote(v)}" for k, v in environment(info, config_dir).items()]
    register, use, login = (shlex.join(c) for c in setup_commands(info, secret_file))
    lines += [f"{register} 2>/dev/null || {shlex.join(update_command(info))}", use, login,
              "echo 'az now manages the local cloud (e.g. az group list, az vm list -d -o table)' >&2"]
    return "\n".join(lines) + "\n"
