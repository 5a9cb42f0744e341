"""list: every cluster recorded under this $FLWRAZURE_HOME, from its record (fast, offline); with refresh, each
cluster's power state asked of its cloud as well, all clusters at once and each within a bound."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor, wait

from flwrazure.plan import names, spot
from flwrazure.workstation import state

REFRESH_SECONDS = 20.0  # a cloud that has not answered by then is shown as such; the list does not wait longer
REFRESH_WORKERS = 8


def recorded_state(st: dict) -> str:
    """What the record says the cluster is: creating (or interrupted: create-cluster resumes it), created (VMs,
    no Flower yet), started (Flower runs), paused, tearing-down (a teardown began and did not finish)."""
    if st.get("teardown") or st.get("teardown_started"):
        return "tearing-down"
    if st.get("status") in ("creating", "interrupted"):  # interrupted: Ctrl-C stopped create-cluster
        return st["status"]
    if st.get("paused"):
        return "paused"
    return "started" if st.get("started") else "created"


def _live(st: dict) -> str:
    """The cluster's state as its cloud says: missing (no resource group), or its VMs' power as status shows it
    (running -> started when Flower was started on it)."""
    from flwrazure.azure import inventory
    from flwrazure.azure.target import connect
    from flwrazure.commands.status import cluster_power

    target = connect(st["cloud"], st["subscription"])
    if inventory.group(target, st["resource_group"]) is None:
        return "missing"
    vms = inventory.vm_rows(inventory.snapshot(target, st["resource_group"], ("vmview",)),
                            names.all_vms(st["cluster"], st["clients"]))
    power = cluster_power([v["state"] for v in spot.mark_evicted(vms, bool(st.get("paused")))])
    if st.get("teardown") or st.get("teardown_started"):
        return "tearing-down"
    return "started" if power == "running" and st.get("started") else power


def _row(name: str, st: dict) -> dict:
    from flwrazure.azure import prices

    clients = int(st.get("clients") or 0)
    state_now = recorded_state(st)
    est = None
    if st.get("location") and st.get("server_size"):
        est = prices.cached(st.get("cloud", "azure"), st["location"], prices.cluster_sizes(st),
                            prices.cluster_disks(st), bool(st.get("private_clients")))
    running = est.running if est else None
    paused = est.paused if est else None
    return {"cluster": name, "cloud": st.get("cloud"), "resource_group": st.get("resource_group"),
            "location": st.get("location"), "state": state_now, "live": False, "vm_count": 1 + clients,
            "clients": clients, "private_clients": bool(st.get("private_clients")), "usd_per_hour": paused if state_now == "paused" else running,
            "usd_per_hour_running": running, "usd_per_hour_paused": paused,
            "price_source": est.source if est else None, "error": None}


def run(refresh: bool = False) -> list[dict]:
    """One dict per recorded cluster (sorted by name), with stable keys."""
    records = {}
    for name in state.known_clusters():
        try:
            records[name] = state.load(name)
        except (ValueError, OSError):  # a record cut short: listed, with what is wrong
            records[name] = {}
    rows = []
    for name, st in records.items():
        if not st:
            rows.append({**_row(name, {}), "state": "unreadable", "vm_count": None, "clients": None,
                         "error": f"{state.path(name)} is not a readable record"})
        else:
            rows.append(_row(name, st))
    if refresh:
        asked = [(row, records[row["cluster"]]) for row in rows if records[row["cluster"]]]
        pool = ThreadPoolExecutor(max_workers=min(REFRESH_WORKERS, max(1, len(asked))), thread_name_prefix="list")
        futures = {pool.submit(_live, st): row for row, st in asked}
        done, _ = wait(futures, timeout=REFRESH_SECONDS)
        pool.shutdown(wait=False, cancel_futures=True)
        for future, row in futures.items():
            if future not in done:
                row["error"] = f"no answer from the cloud within {REFRESH_SECONDS:.0f} s"
                continue
            try:
                row["state"], row["live"] = future.result(), True
            except Exception as exc:  # one unreachable cloud does not hide the other clusters
                row["error"] = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        for row in rows:
            if row["live"] and row["state"] == "missing":
                row["usd_per_hour"] = 0.0  # nothing of it exists: nothing is billed
            elif row["live"] and row["state"] == "paused":
                row["usd_per_hour"] = row["usd_per_hour_paused"]
            elif row["live"]:
                row["usd_per_hour"] = row["usd_per_hour_running"]
    return rows
