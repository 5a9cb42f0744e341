"""docs/json.md, the JSON contract (issue 23, item 16): one key, one type in every command and object; `next` a
list of commands everywhere; every object a table names is defined."""

from tests.helpers import contract


def _base(kind: str) -> str:
    return " or ".join(k for k in kind.split(" or ") if k != "null")


def test_one_key_has_one_type_across_every_command_and_object():
    objects, commands = contract.schema()
    seen: dict[str, dict[str, str]] = {}
    for where, table in [*objects.items(), *commands.items()]:
        for key, (kind, _) in table.items():
            seen.setdefault(key, {})[where] = _base(kind)
    differ = {key: by for key, by in seen.items() if len(set(by.values())) > 1}
    assert differ == {}, differ
    assert seen["port"] == {"rule": "int or str"} and seen["vms"] == dict.fromkeys(
        ["create-cluster", "status", "up", "scale"], "list[vm]")


def test_next_is_in_every_command_and_every_named_type_is_defined():
    objects, commands = contract.schema()
    for name, table in commands.items():
        if name not in ("list", "local status"):  # what is recorded / running: nothing follows from it
            assert table.get("next") == ("list[str]", False), name
    for table in [*objects.values(), *commands.values()]:
        for kind, _ in table.values():
            for word in kind.replace("list[", " ").replace("map[", " ").replace("]", " ").replace(" or ", " ").split():
                assert word in {"str", "int", "number", "bool", "null"} or word in objects, word


def test_a_value_against_a_type():
    objects, _ = contract.schema()
    assert contract.problems(8000, "int or str", objects) == []
    assert contract.problems("8000", "int", objects) == ["$: '8000' is not int"]
    assert contract.problems(True, "int", objects) != []  # a bool is no integer in JSON
    assert contract.problems(None, "cost or null", objects) == []
    assert contract.keys_problems({"name": "n", "ok": None, "detail": "", "fix": "", "extra": 1}, objects["check"],
                                  objects) == ["$.extra: not in docs/json.md"]
