"""The user's side: a `[superlink.<cluster>]` connection in $FLWR_HOME/config.toml (Flower >= 1.26), written
with tomlkit so every other entry and comment stays as it was."""

from __future__ import annotations

import os
from pathlib import Path

import tomlkit


def config_path() -> Path:
    return Path(os.environ.get("FLWR_HOME", Path.home() / ".flwr")) / "config.toml"


def upsert(text: str, name: str, address: str, root_certificates: str | None) -> str:
    doc = tomlkit.parse(text) if text.strip() else tomlkit.document()
    if "superlink" not in doc:
        doc["superlink"] = tomlkit.table()
        doc["superlink"]["default"] = "local"
    section = doc["superlink"]
    entry = tomlkit.table()
    entry["address"] = address
    if root_certificates:
        entry["root-certificates"] = root_certificates
    else:
        entry["insecure"] = True
    section[name] = entry
    return tomlkit.dumps(doc)


def write_connection(name: str, address: str, root_certificates: str | None) -> Path:
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    old = path.read_text() if path.exists() else ""
    new = upsert(old, name, address, root_certificates)
    if new != old:
        tmp = path.with_suffix(".toml.tmp")
        tmp.write_text(new)
        os.replace(tmp, path)
    return path


def remove_connection(name: str) -> bool:
    """Drop `[superlink.<name>]` (teardown), keeping everything else; True when something was removed."""
    path = config_path()
    if not path.exists():
        return False
    doc = tomlkit.parse(path.read_text())
    section = doc.get("superlink")
    if section is None or name not in section:
        return False
    del section[name]
    path.write_text(tomlkit.dumps(doc))
    return True
