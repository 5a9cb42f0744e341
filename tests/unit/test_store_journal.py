"""The local cloud's store keeps what it acknowledged across a crash: changes are journaled at once, the snapshot
is written about once a second. A crash here is a Store dropped without flush (what kill -9 leaves on disk)."""

from __future__ import annotations

import json

from flwrazure.localcloud.arm.store import Store

VM = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm"


def _vm(state: str = "Creating") -> dict:
    return {"id": VM, "name": "vm", "type": "Microsoft.Compute/virtualMachines",
            "properties": {"provisioningState": state}}


def test_a_change_made_after_the_last_snapshot_survives_a_crash(tmp_path):
    path = tmp_path / "state.json"
    store = Store(path)
    with store.lock:
        store.put(VM, _vm(), {"power": "starting"})
    store.flush()
    with store.lock:  # booted after the snapshot, then the crash: no flush
        rec = store.get(VM)
        rec["meta"].update(power="running", booted=True)
        rec["body"]["properties"]["provisioningState"] = "Succeeded"
        store.mark_dirty(resource=VM)
    again = Store(path)
    assert again.get(VM)["meta"] == {"power": "running", "booted": True}
    assert again.get(VM)["body"]["properties"]["provisioningState"] == "Succeeded"


def test_deletes_groups_and_operations_are_journaled_and_replayed_in_order(tmp_path):
    path = tmp_path / "state.json"
    store = Store(path)
    with store.lock:
        store.put(VM, _vm("Succeeded"))
        store.groups["rg"] = {"body": {"name": "rg", "properties": {"provisioningState": "Succeeded"}}, "meta": {}}
        store.mark_dirty(group="rg")
        store.operations["op1"] = {"name": "op1", "status": "InProgress"}
        store.mark_dirty(op="op1")
        store.delete(VM)
    again = Store(path)
    assert again.get(VM) is None
    assert again.groups["rg"]["body"]["name"] == "rg"
    assert again.operations["op1"]["status"] == "Succeeded"  # in flight at the crash: settled, as before


def test_the_snapshot_replaces_the_journal_and_later_changes_still_count(tmp_path):
    path = tmp_path / "state.json"
    store = Store(path)
    with store.lock:
        store.put(VM, _vm("Succeeded"), {"power": "running"})
    store.flush()
    assert not list(tmp_path.glob("state.journal*"))  # the snapshot holds it: the journal is gone
    assert json.loads(path.read_text())["seq"] == 1
    with store.lock:
        store.get(VM)["meta"]["power"] = "deallocated"
        store.mark_dirty(resource=VM)
    assert Store(path).get(VM)["meta"]["power"] == "deallocated"


def test_a_line_cut_short_by_the_crash_ends_the_replay(tmp_path):
    path = tmp_path / "state.json"
    store = Store(path)
    with store.lock:
        store.put(VM, _vm("Succeeded"), {"power": "running"})
    with open(tmp_path / "state.journal", "a") as journal:
        journal.write('{"s": 2, "t": "r", "k": "x", "v": {"bo')
    again = Store(path)
    assert again.get(VM)["meta"]["power"] == "running" and len(again.resources) == 1


def test_a_store_without_a_path_writes_nothing(tmp_path):
    store = Store()
    with store.lock:
        store.put(VM, _vm())
    store.flush()
    assert store.get(VM) and not list(tmp_path.iterdir())


def test_local_reset_forgets_the_journal_too(tmp_path):
    from flwrazure.localcloud import daemon

    path = tmp_path / "state.json"
    store = Store(path)
    with store.lock:
        store.put(VM, _vm("Succeeded"))
    store.flush()
    with store.lock:  # then a crash: a journal beside the snapshot
        store.put(VM + "2", _vm("Succeeded"))
    (tmp_path / "state.journal.7").write_text("")
    daemon.reset(tmp_path)
    assert Store(path).resources == {}
    assert not list(tmp_path.glob("state*"))


def _res(kind: str, name: str, rg: str = "rg") -> tuple[str, dict]:
    rid = f"/subscriptions/s/resourceGroups/{rg}/providers/Microsoft.Network/{kind}/{name}"
    return rid, {"id": rid, "name": name, "type": f"Microsoft.Network/{kind}", "properties": {}}


def test_of_type_follows_puts_replacements_deletes_and_a_reload(tmp_path):
    path = tmp_path / "state.json"
    store = Store(path)
    for kind, name, rg in [("networkInterfaces", "a", "rg"), ("publicIPAddresses", "p", "rg"),
                           ("networkInterfaces", "b", "other"), ("networkInterfaces", "c", "rg")]:
        store.put(*_res(kind, name, rg))
    nic = "Microsoft.Network/networkInterfaces"
    assert [r["body"]["name"] for r in store.of_type(nic)] == ["a", "b", "c"]  # creation order
    assert [r["body"]["name"] for r in store.of_type(nic.upper(), rg="RG")] == ["a", "c"]
    rid, body = _res("networkInterfaces", "a")
    replaced = store.put(rid, {**body, "properties": {"x": 1}})
    assert store.of_type(nic)[0] is replaced  # the record now stored, still first
    store.delete(_res("networkInterfaces", "b", "other")[0])
    assert [r["body"]["name"] for r in store.of_type(nic)] == ["a", "c"]
    again = Store(path)  # after a crash: snapshot (none here) + journal replayed, the index rebuilt
    assert [r["body"]["name"] for r in again.of_type(nic)] == ["a", "c"]
    assert again.of_type(nic)[0]["body"]["properties"] == {"x": 1}
    assert [r["body"]["name"] for r in again.of_type("Microsoft.Network/publicIPAddresses")] == ["p"]
