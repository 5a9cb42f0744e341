"""The user's side: the cluster as a flwr connection, written with tomlkit so every other entry and comment stays
as it was. Flower >= 1.26: `[superlink.<cluster>]` in $FLWR_HOME/config.toml; before: a federation
`[tool.flwr.federations.<cluster>]` in the app's pyproject.toml.

These are the user's files: a rewrite goes through a symlink to its target, keeps the target's mode (and owner),
replaces it whole (never half-written), and one flwrazure process edits a folder's file at a time. A file that is
not TOML, or holds a value where a table belongs, is one line naming it; it is never overwritten."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import tomlkit
from tomlkit.exceptions import TOMLKitError

from flwrazure.errors import UsageError
from flwrazure.workstation import files

CONNECTION_KEYS, FEDERATION_KEYS = ("superlink",), ("tool", "flwr", "federations")


class Malformed(ValueError):
    """The text cannot take the change: not TOML, or a value where a table belongs (the message says which)."""


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


def _parse(text: str):
    try:
        return tomlkit.parse(text) if text.strip() else tomlkit.document()
    except TOMLKitError as exc:
        raise Malformed(f"it is not valid TOML ({' '.join(str(exc).split())})") from None


def _section(doc, keys: tuple[str, ...], create: bool, only_tables: bool = False):
    """The table at doc[keys[0]][keys[1]]…: None when a level is missing (and not create); Malformed when a level
    holds something else than a table (`superlink = 3`). Levels created here are headerless (super tables) where
    they hold tables only (all of them with only_tables), so removing what was added leaves the text as it was."""
    section = doc
    for depth, key in enumerate(keys):
        value = section.get(key)
        if value is None:
            if not create:
                return None
            value = tomlkit.table(is_super_table=only_tables or depth < len(keys) - 1)
            section[key] = value
            value = section[key]
        elif not isinstance(value, dict):
            where = ".".join(keys[:depth + 1])
            shown = " ".join(tomlkit.item(value).as_string().split())
            raise Malformed(f"`{where} = {shown[:40]}` where a table belongs (Flower reads "
                            f"[{'.'.join(keys)}.<name>] tables)")
        section = value
    return section


def upsert(text: str, name: str, address: str, root_certificates: str | None) -> str:
    doc = _parse(text)
    fresh = doc.get("superlink") is None
    superlink = _section(doc, CONNECTION_KEYS, create=True)
    if fresh:
        superlink["default"] = "local"
    superlink[name] = _entry(address, root_certificates)
    return tomlkit.dumps(doc)


def upsert_federation(text: str, name: str, address: str, root_certificates: str | None) -> str:
    """The app's pyproject with `[tool.flwr.federations.<name>]` set (Flower < 1.26)."""
    doc = _parse(text)
    _section(doc, FEDERATION_KEYS, create=True, only_tables=True)[name] = _entry(address, root_certificates)
    return tomlkit.dumps(doc)


def _without(text: str, keys: tuple[str, ...], name: str) -> str:
    doc = _parse(text)
    section = _section(doc, keys, create=False)
    if section is None or name not in section:
        return text
    del section[name]
    return tomlkit.dumps(doc)


def _bad(path: Path, why: str) -> UsageError:
    return UsageError(f"{path}: {why}. Fix it (or move it away), then re-run; flwrazure changed nothing in it.")


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8") if path.exists() else ""
    except UnicodeDecodeError:
        raise _bad(path, "it is not UTF-8 text") from None
    except OSError as exc:
        raise _bad(path, f"it cannot be read ({exc.strerror or exc})") from None


def _rewrite(path: Path, change) -> bool:
    """Apply change(old text) -> new text to the file `path` names (through a symlink: its target is rewritten,
    the link stays), keeping the target's mode and owner; a new file is 0600. True when the text changed."""
    target = Path(os.path.realpath(path))
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with files.locked(target.parent, directory=True):  # two commands on two clusters: both entries stay
            old = _read(target)
            try:
                new = change(old)
            except Malformed as exc:
                raise _bad(path, str(exc)) from None
            if new == old:
                return False
            try:
                st = target.stat()
                mode, owner = stat.S_IMODE(st.st_mode), (st.st_uid, st.st_gid)
            except FileNotFoundError:
                mode, owner = 0o600, None
            files.write_atomic(target, new, mode, owner)
    except OSError as exc:
        raise _bad(path, f"it cannot be written ({exc.strerror or exc})") from None
    return True


def check(path: Path, legacy: bool = False) -> None:
    """Refuse now (UsageError naming the file) what the connection could not be written into later."""
    folder = Path(os.path.realpath(path)).parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise _bad(path, f"{folder} is not a folder, so the file cannot be written")
    text = _read(path)
    try:
        (upsert_federation if legacy else upsert)(text, "flwrazure-check", "127.0.0.1:1", None)
    except Malformed as exc:
        raise _bad(path, str(exc)) from None


def write_connection(name: str, address: str, root_certificates: str | None) -> Path:
    path = config_path()
    _rewrite(path, lambda old: upsert(old, name, address, root_certificates))
    return path


def write_federation(app: Path, name: str, address: str, root_certificates: str | None) -> Path:
    path = app / "pyproject.toml"
    _rewrite(path, lambda old: upsert_federation(old, name, address, root_certificates))
    return path


def remove_connection(name: str, app_pyproject: str | None = None) -> bool:
    """Drop the cluster's connection (teardown): `[superlink.<name>]`, and the federation in the app's pyproject
    when one was written; everything else stays. True when something was removed."""
    removed = False
    for path, keys in ((config_path(), CONNECTION_KEYS),
                       (Path(app_pyproject) if app_pyproject else None, FEDERATION_KEYS)):
        if path is not None and path.exists():
            removed |= _rewrite(path, lambda old, keys=keys: _without(old, keys, name))
    return removed
