"""The flwr CLI that flwrazure runs on the server VM against its own SuperLink over loopback (to register
SuperNode keys and list the nodes online): its connection file and command arguments for each Flower version."""

from __future__ import annotations

import shlex

from flwrazure.plan import versions

NAME = "admin"


def _trust(ca_path: str | None) -> str:
    return f'root-certificates = "{ca_path}"' if ca_path else "insecure = true"


def files(version: str, control_port: int, ca_path: str | None) -> dict[str, str]:
    """File name (inside the admin directory) -> text."""
    address = f"127.0.0.1:{control_port}"
    if versions.config_toml(version):
        return {"config.toml": f'[superlink]\ndefault = "{NAME}"\n\n[superlink.{NAME}]\naddress = "{address}"\n'
                               f"{_trust(ca_path)}\n"}
    # before 1.26 a connection lives in a Flower app's pyproject; the CLI validates the app's fields but does not
    # import its modules for `supernode` commands
    return {"pyproject.toml": (
        '[project]\nname = "flwrazure-admin"\nversion = "1.0.0"\n\n'
        '[tool.flwr.app]\npublisher = "flwrazure"\n\n'
        '[tool.flwr.app.components]\nserverapp = "none:app"\nclientapp = "none:app"\n\n'
        f'[tool.flwr.federations]\ndefault = "{NAME}"\n\n'
        f'[tool.flwr.federations.{NAME}]\naddress = "{address}"\n{_trust(ca_path)}\n')}


def target(version: str, admin_dir: str) -> str:
    """What follows `flwr supernode <command> ...`: the connection name, preceded by the app dir before 1.26."""
    return NAME if versions.config_toml(version) else f"{admin_dir} {NAME}"


PARALLEL = 4  # flwr CLI processes at once on the server VM: ~80 MB and a CPU-second each; more do not go faster


def bounded(items: list[str], command: str, parallel: int = PARALLEL) -> str:
    """A shell command running `command` once per item (each `@` replaced by the item), at most `parallel` at a
    time, returning when all are done. Items are names (VM names, node ids): no spaces or quotes."""
    for item in items:
        if not item or any(c in item for c in " \t\n'\"\\$`;&|<>@"):
            raise ValueError(f"not a plain name: {item!r}")
    listed = " ".join(shlex.quote(i) for i in items)
    return f"printf '%s\\n' {listed} | xargs -P {max(1, int(parallel))} -I @ sh -c {shlex.quote(command)}"
