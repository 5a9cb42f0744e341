"""The user's side: the cluster as a flwr connection, written with tomlkit so every other entry and comment stays
as it was. Flower >= 1.26: `[superlink.<cluster>]` in $FLWR_HOME/config.toml; before: a federation
`[tool.flwr.federations.<cluster>]` in the app's pyproject.toml."""

from __future__ import annotations

import os
from pathlib import Path

import tomlkit


def config_path() -> Path:
    return Path(os.environ.get("FLWR_HOME", Path.home() / ".flwr")) / "config.toml"


def _entry(address: str, root_certificates: str | None):
    entry = tomlkit.table()
    entry["address"] = address
    if root_certificates:
        entry["root-certificates"] = root_certificates
    else:
        entry["insecure"] = True
    return entry


def upsert(text: str, name: str, address: str, root_certificates: str | None) -> str:
    doc = tomlkit.parse(text) if text.strip() else tomlkit.document()
    if "superlink" not in doc:
        doc["superlink"] = tomlkit.table()
        doc["superlink"]["default"] = "local"
    doc["superlink"][name] = _entry(address, root_certificates)
    return tomlkit.dumps(doc)


def upsert_federation(text: str, name: str, address: str, root_certificates: str | None) -> str:
    """The app's pyproject with `[tool.flwr.federations.<name>]` set (Flower < 1.26)."""
    doc = tomlkit.parse(text)
    tool = doc.setdefault("tool", tomlkit.table(is_super_table=True))
    flwr = tool.setdefault("flwr", tomlkit.table(is_super_table=True))
    feds = flwr.setdefault("federations", tomlkit.table())
    feds[name] = _entry(address, root_certificates)
    return tomlkit.dumps(doc)


def _rewrite(path: Path, change) -> bool:
    old = path.read_text() if path.exists() else ""
    new = change(old)
    if new != old:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".flwrazure.tmp")
        tmp.write_text(new)
        os.replace(tmp, path)
    return new != old


def write_connection(name: str, address: str, root_certificates: str | None) -> Path:
    path = config_path()
    _rewrite(path, lambda old: upsert(old, name, address, root_certificates))
    return path


def write_federation(app: Path, name: str, address: str, root_certificates: str | None) -> Path:
    path = app / "pyproject.toml"
    _rewrite(path, lambda old: upsert_federation(old, name, address, root_certificates))
    return path


def _without(text: str, keys: tuple[str, ...], name: str) -> str:
    doc = tomlkit.parse(text)
    section = doc
    for key in keys:
        section = section.get(key) if section is not None else None
    if section is None or name not in section:
        return text
    del section[name]
    return tomlkit.dumps(doc)


def remove_connection(name: str, app_pyproject: str | None = None) -> bool:
    """Drop the cluster's connection (teardown): `[superlink.<name>]`, and the federation in the app's pyproject
    when one was written; everything else stays. True when something was removed."""
    removed = False
    for path, keys in ((config_path(), ("superlink",)),
                       (Path(app_pyproject) if app_pyproject else None, ("tool", "flwr", "federations"))):
        if path is not None and path.exists():
            removed |= _rewrite(path, lambda old, keys=keys: _without(old, keys, name))
    return removed
