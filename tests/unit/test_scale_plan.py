"""scale's decisions: who joins and leaves, num-partitions, runs in progress, registrations, pinned host keys."""

from flwrazure.plan import scale


def test_grow_adds_the_next_numbers_and_shrink_removes_the_highest():
    grow = scale.change("flower", 2, 4)
    assert grow.joining == ("flower-client-3", "flower-client-4") and grow.leaving == () and grow.grows
    shrink = scale.change("flower", 3, 1, {"flower-client-1", "flower-client-2", "flower-client-3"})
    assert shrink.leaving == ("flower-client-3", "flower-client-2") and shrink.joining == () and shrink.shrinks
    assert scale.change("flower", 2, 2, {"flower-client-1", "flower-client-2"}).leaving == ()


def test_an_interrupted_shrink_or_grow_is_finished_by_the_same_command():
    # shrink 4 -> 1 killed after client-4 was deleted: the record still says 4
    again = scale.change("flower", 4, 1, {"flower-client-1", "flower-client-2", "flower-client-3"})
    assert again.leaving == ("flower-client-4", "flower-client-3", "flower-client-2")
    # a VM above the recorded count exists (grow killed after the VM, before the record): shrinking removes it
    stray = scale.change("flower", 2, 2, {"flower-client-1", "flower-client-2", "flower-client-3"})
    assert stray.leaving == ("flower-client-3",)


def test_num_partitions_kept_unless_repartition():
    recorded = {"flower-client-1": 2, "flower-client-2": 2}
    staying = ["flower-client-1", "flower-client-2"]
    assert scale.partitions_after(recorded, staying, 3, repartition=False) == recorded
    assert scale.partitions_after(recorded, staying, 3, repartition=True) == {}
    assert scale.restarted_by_repartition(recorded, staying, 3) == staying
    assert scale.restarted_by_repartition({"flower-client-1": 1}, ["flower-client-1"], 1) == []
    mixed = scale.mixed_partitions({"flower-client-1": 2, "flower-client-2": 2, "flower-client-3": 3}, 3)
    assert mixed == {2: ["flower-client-1", "flower-client-2"], 3: ["flower-client-3"]}
    assert scale.mixed_partitions({"flower-client-1": 3, "flower-client-10": 3}, 3) == {}


def test_active_runs():
    runs = [{"run-id": 1, "status": "finished:completed"}, {"run-id": 2, "status": "running"},
            {"run-id": 3, "status": "pending"}, {"run-id": 4, "status": "finished:failed"},
            {"run-id": 5, "status": "starting"}]
    assert scale.active_runs(runs) == ["2", "3", "5"]
    assert scale.active_runs([]) == []


def test_unregister_plan_and_parse():
    from flwrazure.remote.flwradmin import parse_unregistrations

    ids, unknown = scale.unregister_plan({"flower-client-2": "123", "flower-client-3": "registered",
                                          "flower-client-1": "7"}, ("flower-client-3", "flower-client-2"))
    assert ids == {"flower-client-2": 123} and unknown == ["flower-client-3"]
    out = ('@@flower-client-2\n{"success": true, "node-id": 123}\n@@flower-client-3\n'
           '{"success": false, "error-message": "permission denied"}\n')
    assert parse_unregistrations(out) == {"flower-client-2": "ok", "flower-client-3": "permission denied"}



def test_cluster_power_from_vm_states():
    from flwrazure.commands.status import cluster_power

    assert cluster_power(["deallocated"] * 3) == "paused"
    assert cluster_power(["running"] * 3) == "running"
    assert cluster_power(["running", "deallocated"]) == "partly paused"
    assert cluster_power(["running", "starting"]) == "changing"
    assert cluster_power(["running", "missing"]) == "incomplete"


def test_spec_of_the_recorded_cluster():
    from flwrazure.commands.scale import spec_of

    st = {"cluster": "exp", "clients": 2, "cloud": "local", "subscription": "s", "resource_group": "exp-rg",
          "location": "westeurope", "server_size": "Standard_D4s_v3", "client_size": "Standard_B2s",
          "admin_user": "me", "flwr_version": "1.34.0", "allow_existing_group": True, "ssh_sources": ["203.0.113.7"],
          "started": True, "registered_supernodes": {}}
    spec = spec_of(st, 5)
    assert (spec.clients, spec.location, spec.server_size, spec.client_size, spec.ssh_sources) == \
        (5, "westeurope", "Standard_D4s_v3", "Standard_B2s", ("203.0.113.7",))
    assert spec.allow_existing_group and spec.flwr_version == "1.34.0" and spec.resource_group == "exp-rg"


def test_drain_confirms_where_the_superlink_can_be_asked_and_waits_the_heartbeat_grace_where_not():
    # the grace every supported release applies to a SuperNode that died silently: 2 heartbeats of 30 s
    assert scale.GRACE == 60.0
    for version in ("1.23.0", "1.26.1", "1.34.0", "1.40.0", "1.42.0"):
        d = scale.drain(version)
        assert d.confirm and d.before_delete > 0 and d.after_delete > scale.GRACE, version
    for version in ("1.21.0", "1.22.0"):  # no `flwr supernode list`: nothing to ask
        d = scale.drain(version)
        assert not d.confirm and d.grace == scale.GRACE and d.before_delete == d.after_delete == 0, version
    assert scale.grace_left(100.0, 130.0) == 30.0 and scale.grace_left(100.0, 200.0) == 0.0


def test_still_offered_by_node_id_where_recorded():
    leaving = ("flower-client-3", "flower-client-2")
    ids = {"flower-client-3": "33", "flower-client-2": "22"}
    listed = [{"node-id": "11", "status": "online"}, {"node-id": "22", "status": "online"},
              {"node-id": "33", "status": "offline"}]
    assert scale.still_offered(listed, ids, leaving, 1) == ["flower-client-2"]
    listed[1]["status"] = "unregistered"
    assert scale.still_offered(listed, ids, leaving, 1) == []
    # flwr 1.23 lists node ids as integers
    assert scale.still_offered([{"node-id": 22, "status": "online"}], ids, leaving, 1) == ["flower-client-2"]
    # a staying SuperNode that is offline does not hide a leaving one that is online
    assert scale.still_offered([{"node-id": "11", "status": "offline"}, {"node-id": "33", "status": "online"}],
                               ids, leaving, 1) == ["flower-client-3"]


def test_still_offered_by_count_where_node_ids_are_unknown():
    # insecure clusters: SuperNodes register themselves; online nodes beyond the staying ones are leaving ones
    leaving = ("flower-client-3", "flower-client-2")
    online = [{"node-id": str(i), "status": "online"} for i in (5, 6, 7)]
    assert scale.still_offered(online, {}, leaving, 1) == ["flower-client-3", "flower-client-2"]
    assert scale.still_offered(online[:2], {}, leaving, 1) == ["flower-client-3"]
    assert scale.still_offered(online[:1], {}, leaving, 1) == []
    assert scale.still_offered([], {}, leaving, 1) == []
    gone = [{"node-id": "6", "status": "unregistered"}, {"node-id": "7", "status": "offline"}]
    assert scale.still_offered(online[:1] + gone, {}, leaving, 1) == []
    # mixed: one leaving VM known by id (offline), one not: the count excludes the known ids
    assert scale.still_offered([*online[:2], {"node-id": "33", "status": "offline"}],
                               {"flower-client-3": "33"}, leaving, 1) == ["flower-client-2"]
