"""Key-by-key comparison of an emulator response with a spec example's response."""

from __future__ import annotations


def missing_keys(expected, actual, path: str = "$") -> list[str]:
    """Every key path the example shows that the actual body lacks (recursively; values are not compared).

    List items are paired by `name` when the example's item has one that the actual list holds, else by
    position, else with the first actual item (so item shapes are still checked). An empty actual list is a
    value (e.g. no extensions installed), not a missing key.
    """
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [path]
        out: list[str] = []
        for key, value in expected.items():
            if key not in actual:
                out.append(f"{path}.{key}")
            else:
                out += missing_keys(value, actual[key], f"{path}.{key}")
        return out
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return [path]
        out = []
        for i, item in enumerate(expected):
            if not actual:
                break
            partner = None
            if isinstance(item, dict) and "name" in item:
                partner = next((a for a in actual if isinstance(a, dict) and a.get("name") == item["name"]), None)
            if partner is None:
                partner = actual[i] if i < len(actual) else actual[0]
            out += missing_keys(item, partner, f"{path}[{i}]")
        return out
    return []
