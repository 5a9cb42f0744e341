"""The JSON contract as docs/json.md writes it: its tables read into a schema, and a check of a command's output
against it. The doc is the schema, so the two cannot drift."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "json.md"
ROW = re.compile(r"^\| `([^`]+)` \| (optional )?`([^`]+)` \|")


def schema() -> tuple[dict[str, dict], dict[str, dict]]:
    """(objects, commands): name -> {key: (type, optional)}, from the `### name` tables under `## Objects` and
    `## Commands`. `start_result` is start's table; `up` has start's keys and its own."""
    objects: dict[str, dict] = {}
    commands: dict[str, dict] = {}
    part, name = None, None
    for line in DOC.read_text().splitlines():
        if line.startswith("## "):
            part = {"## Objects": objects, "## Commands": commands}.get(line.strip())
            name = None
        elif line.startswith("### ") and part is not None:
            name = line[4:].strip()
            part[name] = {}
        elif part is not None and name and (m := ROW.match(line)):
            part[name][m.group(1)] = (m.group(3), bool(m.group(2)))
    objects["start_result"] = commands["start"]
    commands["up"] = {**commands["start"], **commands["up"]}
    return objects, commands


def problems(value, kind: str, objects: dict, where: str = "$") -> list[str]:
    """What in `value` disagrees with the type `kind` (`str`, `int or null`, `list[vm]`, `map[int]`, an object)."""
    alternatives = [k.strip() for k in kind.split(" or ")]
    if len(alternatives) > 1:
        found = {alt: problems(value, alt, objects, where) for alt in alternatives}
        return [] if any(not p for p in found.values()) else [f"{where}: {value!r} is not {kind}"]
    if kind == "null":
        return [] if value is None else [f"{where}: {value!r} is not null"]
    simple = {"str": lambda v: isinstance(v, str), "bool": lambda v: isinstance(v, bool),
              "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
              "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)}
    if kind in simple:
        return [] if simple[kind](value) else [f"{where}: {value!r} is not {kind}"]
    if kind.startswith("list[") and kind.endswith("]"):
        if not isinstance(value, list):
            return [f"{where}: {value!r} is not a list"]
        return [p for i, v in enumerate(value) for p in problems(v, kind[5:-1], objects, f"{where}[{i}]")]
    if kind.startswith("map[") and kind.endswith("]"):
        if not isinstance(value, dict):
            return [f"{where}: {value!r} is not an object"]
        return [p for k, v in value.items() for p in problems(v, kind[4:-1], objects, f"{where}.{k}")]
    if kind not in objects:
        return [f"{where}: type {kind!r} is not in docs/json.md"]
    return keys_problems(value, objects[kind], objects, where)


def keys_problems(value, table: dict, objects: dict, where: str = "$") -> list[str]:
    """An object against its table: every key documented, every non-optional key present, each of its type."""
    if not isinstance(value, dict):
        return [f"{where}: {value!r} is not an object"]
    out = [f"{where}.{k}: not in docs/json.md" for k in value if k not in table]
    out += [f"{where}.{k}: missing" for k, (_, optional) in table.items() if not optional and k not in value]
    out += [p for k, v in value.items() if k in table for p in problems(v, table[k][0], objects, f"{where}.{k}")]
    return out


def check(command: str, value) -> list[str]:
    """A command's --json output against its table (`list`: an array of its rows)."""
    objects, commands = schema()
    table = commands[command]
    if command == "list":
        if not isinstance(value, list):
            return [f"$: {value!r} is not an array"]
        return [p for i, row in enumerate(value) for p in keys_problems(row, table, objects, f"$[{i}]")]
    return keys_problems(value, table, objects)


def documented(command: str, stdout: str):
    """A command's --json stdout, parsed and checked against its table (the value, for the test's own asserts)."""
    import json

    value = json.loads(stdout)
    assert check(command, value) == [], (command, check(command, value))
    return value
