"""Azure's public Retail Prices API (no credentials): list prices for the cluster's VM sizes, public IPs and OS
disks. Each answer is cached under $FLWRAZURE_HOME/prices/ so an estimate is possible offline; with neither an
answer nor a cached one there is no estimate. The local cloud serves the same API (with its own prices, labelled
as such) on its endpoint."""

from __future__ import annotations

import json
import os
import time

from flwrazure import workers
from flwrazure.plan import cost
from flwrazure.workstation import settings

AZURE_PRICES = "https://prices.azure.com/api/retail/prices"
API_VERSION = "2023-01-01-preview"
MAX_PAGES = 5


def endpoint(target) -> tuple[str, str | bool]:
    """(URL, TLS verification) of the Retail Prices API for this cloud."""
    if target.cloud == "local":
        return f"{target.base_url}/api/retail/prices", target.verify
    return AZURE_PRICES, True


def _cache_path(cloud: str):
    return settings.home() / "prices" / f"{cloud}.json"


def _load_cache(cloud: str) -> dict:
    try:
        return json.loads(_cache_path(cloud).read_text())
    except (OSError, ValueError):
        return {}


def _save_cache(cloud: str, data: dict) -> None:
    path = _cache_path(cloud)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, path)


def _fetch(url: str, verify, flt: str, timeout: float) -> tuple[list[dict], str]:
    import requests

    items: list[dict] = []
    label = ""
    params: dict | None = {"api-version": API_VERSION, "$filter": flt}
    for _ in range(MAX_PAGES):
        resp = requests.get(url, params=params, verify=verify, timeout=timeout)
        resp.raise_for_status()
        body = resp.json()
        items += list(body.get("Items") or [])
        label = label or str(body.get("CustomerEntityId") or "")
        url, params = body.get("NextPageLink"), None
        if not url:
            break
    return items, label


def lookup(target, location: str, sizes: list[str], disks: list[str] | None = None,
           timeout: float = 8.0, private: bool = False) -> cost.Estimate | None:
    """The estimate for VMs of these sizes (one entry per VM) with these OS disk types (one per VM; default
    Premium SSD), private: in the --private-clients layout; None when no price is known at all."""
    got = fetch(target, location, sizes, disks, timeout, private)
    return cost.estimate(sizes, got[0], got[1], disks, private) if got is not None else None


def fetch(target, location: str, sizes: list[str], disks: list[str] | None = None,
          timeout: float = 8.0, private: bool = False) -> tuple[dict[str, float | None], str] | None:
    """The hourly prices (cost.queries' keys) for these sizes and disk types (and the NAT gateway's, private), and
    where they came from; None when no price is known at all."""
    url, verify = endpoint(target)
    asks = cost.queries(location, sizes, disks, private)
    cache = _load_cache(target.cloud)
    answers: dict[str, list[dict] | None] = {}
    labels: set[str] = set()

    def one(q: cost.Query):
        try:
            return q, _fetch(url, verify, q.filter, timeout), None
        except Exception as exc:  # offline, refused, 5xx: the cache may answer
            return q, None, exc

    fresh = 0
    with workers.pool(len(asks)) as pool:
        for q, got, _exc in pool.map(one, asks):
            if got is not None:
                items, label = got
                answers[q.key] = items
                labels.add(label)
                cache[q.filter] = {"items": items, "label": label,
                                   "fetched": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
                fresh += 1
            elif q.filter in cache:
                answers[q.key] = cache[q.filter]["items"]
                labels.add(cache[q.filter].get("label", ""))
    if fresh:
        _save_cache(target.cloud, cache)
    if not answers:
        return None
    prices = {key: cost.hourly(key, items) if items is not None else None for key, items in answers.items()}
    if fresh == len(asks):
        where = "list prices now"
    else:
        when = min((cache[q.filter]["fetched"] for q in asks if q.filter in cache), default="?")
        where = f"cached list prices from {when}" if fresh == 0 else f"list prices (partly cached from {when})"
    own = "the local cloud's own price list, not Azure's" if target.cloud == "local" or \
        any("local" in lb for lb in labels) else "Azure Retail Prices API, pay-as-you-go, USD"
    return prices, f"{where}: {own}"


def cached(cloud: str, location: str, sizes: list[str], disks: list[str] | None = None,
           private: bool = False) -> cost.Estimate | None:
    """The estimate from the cached answers alone (no request: `flwrazure list` must be fast and works offline);
    None when nothing is cached for these VMs."""
    cache = _load_cache(cloud)
    asks = cost.queries(location, sizes, disks, private)
    if not any(q.filter in cache for q in asks):
        return None
    prices = {q.key: cost.hourly(q.key, cache[q.filter]["items"]) if q.filter in cache else None for q in asks}
    when = min((cache[q.filter]["fetched"] for q in asks if q.filter in cache), default="?")
    return cost.estimate(sizes, prices, f"cached list prices from {when}", disks, private)


def cluster_sizes(st: dict, clients: int | None = None) -> list[str]:
    """One size per VM of the recorded cluster (server first)."""
    n = st["clients"] if clients is None else clients
    client = cost.spot(st["client_size"]) if st.get("spot") else st["client_size"]
    return [st["server_size"]] + [client] * n


def cluster_disks(st: dict, clients: int | None = None) -> list[str]:
    """One OS disk type per VM of the recorded cluster, as create-cluster chose them for their sizes."""
    return cost.os_disks(cluster_sizes(st, clients), st.get("os_disks"))
