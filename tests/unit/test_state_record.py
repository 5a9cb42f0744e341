"""The cluster's local record: commands running side by side in one process (`up` and `scale` run open-ports beside
start) each set only their own keys, so neither undoes the other's."""

import threading

from flwrazure.workstation import state


def test_update_keeps_what_another_command_wrote_meanwhile(tmp_path, monkeypatch):
    monkeypatch.setenv("FLWRAZURE_HOME", str(tmp_path))
    state.save("c", {"cluster": "c", "control_sources": None})
    loaded_by_start = state.load("c")  # start reads the record first, then works for minutes
    state.update("c", {"control_sources": ["203.0.113.9"]})  # open-ports, beside it
    state.update("c", {"started": True, "registered_supernodes": {"c-client-1": "k"}})
    assert loaded_by_start["control_sources"] is None
    assert state.load("c") == {"cluster": "c", "control_sources": ["203.0.113.9"], "started": True,
                               "registered_supernodes": {"c-client-1": "k"}}


def test_concurrent_updates_lose_no_key(tmp_path, monkeypatch):
    monkeypatch.setenv("FLWRAZURE_HOME", str(tmp_path))
    state.save("c", {"cluster": "c"})
    threads = [threading.Thread(target=lambda i=i: [state.update("c", {f"k{i}-{j}": j}) for j in range(20)])
               for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(state.load("c")) == 1 + 8 * 20
