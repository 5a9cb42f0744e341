"""create-cluster, open-ports, status, teardown: parse options, call flwrazure.commands, render the result."""

from __future__ import annotations

from pathlib import Path

import click

from flwrazure.plan import versions

CLUSTER = click.option("--cluster", default="flower", show_default=True, metavar="NAME",
                       help="Cluster name (VMs are NAME-server, NAME-client-1..N).")


def JSON(fn):
    """--json, and `-o json` as in `az` (`-o table`: the default output)."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, output=None, **kwargs):
        if output == "json":
            kwargs["as_json"] = True
        return fn(*args, **kwargs)

    wrapper = click.option("-o", "--output", type=click.Choice(["json", "table"], case_sensitive=False),
                           callback=lambda ctx, param, value: value and value.lower(),
                           help="json: the same as --json; table: the default output.")(wrapper)
    return click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (for scripts).")(wrapper)


YES = click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")


def confirm(question: str) -> None:
    """Ask before deleting; without a terminal to ask at, refuse in one line (exit 2) instead of aborting."""
    import sys

    from flwrazure.errors import UsageError

    if not sys.stdin.isatty():
        raise UsageError(f"{question.rstrip('?')}: no terminal to confirm at; pass --yes (-y) to go ahead.")
    try:
        click.confirm(question, abort=True, err=True)
    except click.Abort as exc:
        if isinstance(exc.__context__, KeyboardInterrupt):  # Ctrl-C at the question: nothing was done yet
            from flwrazure.errors import Interrupted

            raise Interrupted("nothing was deleted.") from None
        raise


def cloud_of(given: str | None, cluster: str) -> str:
    """--cloud; else a recorded cluster's cloud; else FLWRAZURE_CLOUD; else azure, unless a local cloud runs here:
    then which cloud is meant is not guessed (creating VMs on Azure by mistake costs money)."""
    import os

    from flwrazure.errors import UsageError
    from flwrazure.spec import CLOUDS, cluster_name

    env = os.environ.get("FLWRAZURE_CLOUD", "").strip()
    if env and env not in CLOUDS:
        raise UsageError(f"FLWRAZURE_CLOUD={env!r}: set it to 'local' or 'azure' (or unset it).")
    if given:
        return given
    from flwrazure.workstation import state

    if state.exists(cluster_name(cluster)):
        return state.load(cluster).get("cloud") or "azure"
    if env:
        return env
    from flwrazure.azure.target import local_cloud_running

    if local_cloud_running():
        raise UsageError("a local cloud is running here (`flwrazure local up`): pass --cloud local to use it or "
                         "--cloud azure for Azure (or set FLWRAZURE_CLOUD).")
    return "azure"


CLIENT_DATA = click.option(
    "--client-data", type=click.Path(path_type=Path), metavar="DIR",
    help="Per-client data: DIR/<i>/ is copied to client VM i (NAME-client-<i>) as ~/flwrazure/data (0700, files "
         "0600; only changed files are copied, files gone from DIR/<i> are removed there) and given to its "
         "SuperNode as node config data-path. Remembered for scale and resume.")


def _spec(cluster, clients, cloud, subscription, resource_group, location, vm_size, server_vm_size,
          client_vm_size, admin_user, ssh_source, flwr_version, use_existing_group, private_clients=None, spot=False,
          max_price=None):
    from flwrazure import ui
    from flwrazure.plan.rules import parse_sources
    from flwrazure.spec import ClusterSpec, validate

    spec = validate(ClusterSpec(
        cluster=cluster, clients=clients, cloud=cloud_of(cloud, cluster), subscription=subscription,
        resource_group=resource_group, location=location, server_size=server_vm_size or vm_size,
        client_size=client_vm_size or vm_size,
        admin_user=admin_user, ssh_sources=parse_sources(ssh_source, "--ssh-source") if ssh_source else (),
        flwr_version=_version(flwr_version),
        allow_existing_group=use_existing_group, private_clients=private_clients, spot=spot, max_price=max_price,
        size_flags=("--server-vm-size" if server_vm_size else "--vm-size",
                    "--client-vm-size" if client_vm_size else "--vm-size")))
    if "*" in spec.ssh_sources:
        ui.warn("SSH (port 22) will be open to any address.")
    return spec


def _rules_table(rows: list[dict]) -> None:
    from flwrazure import ui

    ui.table("Inbound rules", ["rule", "priority", "access", "port", "from", "to"],
             [[r["name"], r["priority"], r.get("access", "Allow"), r["port"], ", ".join(map(str, r["sources"])),
               r["destination"]] for r in rows], keep=("rule",))


def _version(flwr_version: str | None) -> str:
    return flwr_version or versions.default_version(versions.installed_flwr())


def _vm_table(title: str, rows: list[dict], cluster: str | None = None) -> None:
    from flwrazure import ui

    ui.table(title, ["VM", "role", "public IP", "private IP", "size", "state"],
             [[r["vm"], r["role"], r["public_ip"], r["private_ip"], r["size"],
               r["state"] + (f" ({r['provisioning']})" if r.get("provisioning") and r["provisioning"] != r["state"]
                             else "")] for r in rows], keep=("VM",), prefix=f"{cluster}-" if cluster else "")


def _create_options(fn):
    """The options of create-cluster, shared with `up`."""
    for option in reversed(CREATE_OPTIONS):
        fn = option(fn)
    return fn


CREATE_OPTIONS = [
    click.option("--clients", default=2, show_default=True, type=int, help="Number of SuperNode VMs (1-100)."),
    click.option("--cloud", default=None, metavar="azure|local",
              help="Public Azure, or the offline local cloud (`flwrazure local up`) [default: a recorded cluster's "
                   "cloud, else $FLWRAZURE_CLOUD, else azure; asked for when a local cloud runs]."),
    click.option("--subscription", metavar="ID", help="Azure subscription (default: AZURE_SUBSCRIPTION_ID or az CLI)."),
    click.option("-g", "--resource-group", metavar="NAME", help="Resource group for everything [default: CLUSTER-rg]."),
    click.option("-l", "--location", default="eastus", show_default=True, help="Azure region."),
    click.option("--vm-size", default="Standard_D2s_v3", show_default=True,
                 help="Size of every VM (any case: standard_d2s_v3 works). Image and OS disk follow the size's capabilities: Ubuntu 24.04 LTS Gen2 "
                      "x64 on a Premium SSD; a Gen1-only size (e.g. Standard_A2_v2, Standard_D2_v3) gets the Gen1 "
                      "image, an Arm64 size (Standard_D2ps_v5) the Arm64 image, a size without premium storage "
                      "(Standard_D2_v3, Standard_D1_v2) a Standard SSD (StandardSSD_LRS)."),
    click.option("--server-vm-size", metavar="SIZE", help="Size of the SuperLink VM [default: --vm-size]."),
    click.option("--client-vm-size", metavar="SIZE", help="Size of the SuperNode VMs [default: --vm-size]."),
    click.option("--admin-user", default="azureuser", show_default=True, help="Login user on the VMs."),
    click.option("--ssh-key", type=click.Path(path_type=Path), metavar="PATH",
              help="Your own private key, Ed25519 or RSA >= 2048 bits (PATH.pub is used if present; a passphrase-"
                   "protected key through your ssh-agent) [default: a new key per cluster]."),
    click.option("--ssh-source", metavar="IP|CIDR|any",
              help="Who may SSH in [default: your public address, detected]."),
    click.option("--flwr-version", metavar="X.Y.Z",
              help=f"Flower version of the cluster; decides its ports [default: installed flwr if supported, else "
                   f"{versions.DEFAULT_VERSION}]."),
    click.option("--use-existing-group", is_flag=True,
              help="Add the cluster to a resource group flwrazure did not create (it is then never deleted)."),
    click.option("--private-clients/--public-clients", "private_clients", default=None,
                 help="Client VMs without public IPs: they go out through one NAT gateway on the subnet and reach "
                      "the SuperLink at its private address; SSH to them goes through the server. [default: a "
                      "recorded cluster's layout, else public clients; a cluster keeps its layout]"),
    click.option("--spot", is_flag=True,
                 help="Client VMs as Azure Spot VMs (the server never is): billed at the Spot price (Azure: up to "
                      "90% less; it changes), evicted when Azure needs the capacity (deallocated: `status` says "
                      "evicted, `resume` starts them again when capacity allows). Kept by scale."),
    click.option("--max-price", metavar="USD", help="With --spot: the most a client VM may cost per hour (evicted "
                                                    "when the Spot price goes above) [default: -1, up to the "
                                                    "pay-as-you-go price: evicted for capacity only]."),
]


@click.command("create-cluster")
@CLUSTER
@_create_options
@JSON
def create_cluster(cluster, clients, cloud, subscription, resource_group, location, vm_size, server_vm_size,
                   client_vm_size, admin_user, ssh_key, ssh_source, flwr_version, use_existing_group,
                   private_clients, as_json, spot=False, max_price=None):
    """Create the VMs of a Flower federation: one SuperLink VM, N SuperNode VMs, their network and an NSG that
    admits SSH only from you. Safe to re-run: it creates only what is missing.

    \b
    Examples:
      flwrazure create-cluster --cloud azure --clients 2 -l westeurope
      flwrazure create-cluster --cloud azure --flwr-version 1.34.0 --vm-size Standard_D4s_v3 -o json
      flwrazure local up && flwrazure create-cluster --cloud local --clients 5
    """
    from flwrazure import ui
    from flwrazure.commands import create, exclusive

    spec = _spec(cluster, clients, cloud, subscription, resource_group, location, vm_size, server_vm_size,
                 client_vm_size, admin_user, ssh_source, flwr_version, use_existing_group, private_clients, spot,
                 max_price)
    with exclusive(cluster, "create-cluster", create=True):
        result = create.run(spec, ssh_key)  # progress on stderr, with --json too
    if as_json:
        ui.emit_json(result)
        return
    _vm_table(f"Cluster {cluster} ({result['resource_group']}, {result['location']}, flwr "
              f"{result['flwr_version']})", result["vms"], cluster)
    where = "<server public IP>" if result["network"]["layout"] != "public" else "<public IP>"
    _out(f"SSH: ssh -i {result['ssh_private_key']} {admin_user}@{where}   (allowed from "
         f"{', '.join(result['ssh_sources'])})")
    _network_line(cluster, result["network"])
    _cost_line(result.get("cost"))
    ui.next_steps(result["next"])


@click.command("open-ports")
@CLUSTER
@click.option("--source", metavar="IP|CIDR|me|any",
              help="Who may reach the Control port (the flwr CLI): your address ('me': detected, as create-cluster "
                   "detects it for SSH).")
@click.option("--close", is_flag=True, help="Remove the Fleet and Control rules again (the Control port stays "
                                             "closed to the VNet's VMs).")
@click.option("--allow-public-control", is_flag=True,
              help="Allow --source any: anyone could then submit runs, i.e. run code on every VM.")
@JSON
def open_ports(cluster, source, close, allow_public_control, as_json):
    """Open the SuperLink's ports, least privilege: the Fleet port only to the client VMs, the Control port only
    to --source. Ports follow the cluster's Flower version (9092/9093 up to 1.34, 8000 from 1.40).

    \b
    Examples:
      flwrazure open-ports --source me
      flwrazure open-ports --source 203.0.113.7
      flwrazure open-ports --source 198.51.100.0/24 --cluster exp-2
      flwrazure open-ports --close

    Flower 1.21-1.34: the Control port (9093) is also closed to the VNet's own VMs (a Deny before Azure's
    AllowVnetInBound), so a client VM cannot submit runs; from 1.40 Fleet and Control share port 8000, which the
    client VMs must reach.
    """
    from flwrazure import ui
    from flwrazure.commands import exclusive, ports
    from flwrazure.errors import UsageError
    from flwrazure.plan.rules import parse_sources
    from flwrazure.spec import cluster_name

    cluster_name(cluster)
    if close and source:
        raise UsageError("--close removes the rules; it takes no --source.")
    if not close and not source:
        raise UsageError("--source is required: the address that will run `flwr run` (your IP, or 'me' to detect "
                         "it), a CIDR, or 'any'.")
    sources = None if close else parse_sources(source, "--source", allow_me=True)
    with exclusive(cluster, "open-ports"):
        result = ports.run(cluster, sources, close, allow_public=allow_public_control)
    if as_json:
        ui.emit_json(result)
        return
    already = "the Fleet and Control rules are already closed" if close else "the rules are already in place"
    for change in result["changes"] or [f"no changes: {already}"]:
        _out(change)
    for name in result["kept"]:
        _out(f"kept {name}: the client VMs stay unable to reach the Control port")
    if result["rules"]:
        _rules_table(result["rules"])
    ui.next_steps(result["next"])


@click.command("status")
@CLUSTER
@JSON
def status(cluster, as_json):
    """Show the cluster's VMs (power state, addresses), inbound rules, Flower version and ports.

    \b
    Examples:
      flwrazure status
      flwrazure status --cluster exp-2 --json
    """
    from flwrazure import ui
    from flwrazure.commands import status as status_cmd
    from flwrazure.spec import cluster_name

    result = status_cmd.run(cluster_name(cluster))
    if as_json:
        ui.emit_json(result)
        return
    if result.get("note"):  # the resource group is gone or going
        _out(f"Cluster {cluster} ({result['cloud']}): {result['note']}.")
        if result["cost"] is not None:
            _cost_line(result["cost"])
        ui.next_steps(result["next"])
        return
    plan = result["port_plan"]
    _vm_table(f"Cluster {cluster} ({result['cloud']}, {result['resource_group']}, {result['location']})", result["vms"], cluster)
    ports = f"fleet {plan['fleet']}, control {plan['control']}"
    _out(f"Flower {result['flwr_version']} ({plan['generation']} generation: {ports})")
    if any("service" in v for v in result["vms"]):
        mode = "TLS + SuperNode authentication" if result["secure"] else "insecure"
        services = ", ".join(f"{v['vm']}: {v['service']}" + (f" (SuperNode {v['supernode']})" if v.get("supernode")
                                                                   else "") for v in result["vms"])
        online = result["supernodes_online"]
        _out(f"Services ({mode}): {services}; SuperNodes online: {'?' if online is None else online}")
    if any(v.get("data_path") for v in result["vms"]):
        _out("Client data: " + ", ".join(f"{v['vm']}: {v['data_path']} ({v['data_bytes']} bytes)"
                                         for v in result["vms"] if v.get("data_path")))
    _rules_table(result["rules"])
    _network_line(cluster, result["network"])
    if result.get("silos"):
        from flwrazure.cli.silo import table

        table(f"Silos of cluster {cluster}", result["silos"])
    if plan["fleet"] == plan["control"]:
        _out(f"Fleet and Control share port {plan['control']}: the client VMs reach the Control API too (a "
             "compromised client VM could submit runs).")
    if result.get("interrupted"):
        _out("Interrupted: creating the cluster's VMs did not finish.")
    elif result["paused"]:
        _out("Paused: every VM is deallocated (no compute billed; IPs, disks, keys and rules kept).")
    elif result["power"] == "partly paused":
        _out("Partly paused: some VMs are deallocated.")
    elif result["power"] == "evicted":
        _out("Evicted: Azure reclaimed the capacity of " + ", ".join(v["vm"] for v in result["vms"] if v["state"] ==
             "evicted") + " (Spot: deallocated, disk and addresses kept). `resume` starts them again when Azure "
             "has the capacity.")
    _cost_line(result["cost"], result["paused"])
    ui.next_steps(result["next"])


@click.command("list")
@click.option("--refresh", is_flag=True, help="Also ask each cluster's cloud for its power state (all at once, "
                                             "each within 20 s); without it, what the records say (instant).")
@JSON
def list_clusters(refresh, as_json):
    """Every cluster of this FLWRAZURE_HOME: its cloud, resource group, state, VM count and estimated cost per
    hour (from cached list prices). State as recorded: creating (or killed), interrupted (Ctrl-C: re-run
    create-cluster), created (VMs, no Flower yet), started (Flower runs), paused, tearing-down; with --refresh
    as the cloud says: running, started, paused, partly paused, evicted (Spot clients), changing, incomplete, missing.

    \b
    Examples:
      flwrazure list
      flwrazure list --refresh -o json
    """
    from flwrazure import ui
    from flwrazure.commands import listing

    rows = listing.run(refresh)
    if as_json:
        ui.emit_json(rows)
        return
    if not rows:
        ui.info("No clusters in this FLWRAZURE_HOME: create one with `flwrazure create-cluster --cloud azure|local`.")
        return
    ui.table(None, ["cluster", "cloud", "resource group", "state", "VMs", "$/hour"],
             [[r["cluster"], r["cloud"], r["resource_group"], r["state"] + ("" if r["live"] or not refresh else "?"),
               f"{r['vm_count']}" + (" (private clients)" if r.get("private_clients") else ""),
               "?" if r["usd_per_hour"] is None else f"{r['usd_per_hour']:.4f}"] for r in rows],
             keep=("cluster",), plain=True)
    for r in rows:
        if r["error"]:
            ui.info(f"{r['cluster']}: {r['error']}")


@click.command("teardown")
@CLUSTER
@YES
@click.option("--no-wait", is_flag=True, help="Return once Azure accepted the resource group deletion.")
@click.option("--purge", is_flag=True, help="Also delete the cluster's local keys and certificates.")
@JSON
def teardown(cluster, yes, no_wait, purge, as_json):
    """Delete everything flwrazure created for the cluster (and nothing else), then check nothing is left.

    \b
    Examples:
      flwrazure teardown
      flwrazure teardown --cluster exp-2 --yes --purge
    """
    from flwrazure.commands import exclusive
    from flwrazure.spec import cluster_name

    with exclusive(cluster_name(cluster), "teardown"):
        _teardown(cluster_name(cluster), yes, no_wait, purge, as_json)


def _teardown(cluster, yes, no_wait, purge, as_json):
    from rich.markup import escape

    from flwrazure import ui
    from flwrazure.commands import teardown as td

    done = td.already_torn_down(cluster, purge)
    if done is not None:
        if as_json:
            ui.emit_json(done)
        elif done["purged"]:
            _out(f"Cluster {cluster} was torn down already: nothing is left in the cloud; its local keys and "
                 "certificates are removed now.")
        elif done["keys"]:
            _out(f"Cluster {cluster} was torn down already: nothing is left (its keys are kept in "
                 f"{done['keys']}; --purge removes them).")
        else:
            known = ", ".join(done["known_clusters"]) or "none"
            _out(f"Nothing to tear down: no cluster named {cluster} is recorded here (known clusters: {known}).")
        return
    p = td.plan(cluster)
    from flwrazure.commands.silo import admitted_silos

    silos = admitted_silos(cluster)
    if not as_json:
        if silos:
            ui.info(escape(f"Silo(s) {', '.join(silos)} lose this SuperLink: tell their admins to run `flwrazure "
                           "silo leave` (their machines are theirs; nothing of them is deleted here)."))
        what = (f"resource group {p['resource_group']} and everything in it" if p["mode"] == "group"
                else f"{len(p['resources'])} resource(s) tagged for cluster {cluster} in {p['resource_group']}")
        ui.info(f"Teardown of cluster {cluster} on {p['target'].describe()}: {what}.")
        if p["why"]:
            ui.info(escape(f"Why not the whole group: {p['why']}."))
        if p["resources"]:  # what the prompt is about: on stderr with it, stdout keeps the result
            ui.table("Will be deleted", ["name", "type"], [[r["name"], r["type"]] for r in p["resources"]],
                     keep=("name",), err=True)
        if p["foreign"]:
            ui.info(escape(f"Kept (not cluster {cluster}'s): {td.foreign_names(p['foreign'])}"))
    if not yes and (p["resources"] or p["group_exists"]):
        confirm(f"Delete the resources of cluster {cluster}?")
    planned = p["mode"]
    whole = p["mode"] == "group" and not no_wait
    with ui.Steps({"resources": len(p["resources"])}, enabled=p["mode"] == "tagged") as steps, \
            ui.Milestones(f"Deleting resource group {p['resource_group']} and everything in it", whole):
        result = td.execute(p, wait=not no_wait, purge=purge, progress=steps)
    if as_json:
        ui.emit_json({**result, "admitted_silos": silos})
        return
    if planned != result["mode"] and result.get("why"):
        ui.info(escape(f"Not the whole group after all: {result['why']}."))
    _out(f"Deleted: {_deleted(result)}." + ("" if result["waited"] else " (deletion continues in Azure)"))
    if result.get("note"):
        _out(result["note"][0].upper() + result["note"][1:])
    if not result["waited"]:
        ui.info(f"The cluster stays recorded until its group is gone: `flwrazure status --cluster {cluster}` or "
                f"`flwrazure teardown --cluster {cluster}` checks, then forgets it.")
        return
    _out("Local state removed" + (" with keys." if purge else "; keys kept (use --purge to remove them)."))


def _deleted(result: dict) -> str:
    """teardown's `deleted` (ARM ids) for people: the group and how much it held, or the resources' names."""
    ids = result["deleted"]
    if not ids:
        return "nothing was left"
    if result["mode"] == "group":
        return f"resource group {ids[0].rsplit('/', 1)[-1]}" + (f" and the {len(ids) - 1} resource(s) in it"
                                                                if len(ids) > 1 else "")
    return ", ".join(i.rsplit("/", 1)[-1] for i in ids)


@click.command("start")
@CLUSTER
@click.option("--insecure", is_flag=True,
              help="No TLS, no SuperNode authentication: the seed guide's setup (not for production).")
@click.option("--extra-pip", multiple=True, metavar="PKG",
              help="Packages installed once into the Flower environment of every VM, when `start` runs (for what "
                   "must be there before any run, or Flower before 1.29).")
@click.option("--index-url", metavar="URL", help="Package index for the VMs (and Flower's run-time installer).")
@click.option("--app", type=click.Path(path_type=Path, exists=True, file_okay=False), metavar="DIR",
              help="Your Flower app: the exact `flwr run` command is printed for it (and for Flower < 1.26 the "
                   "federation is written into its pyproject.toml).")
@click.option("--runtime-deps/--no-runtime-deps", default=None,
              help="Flower installs each app's declared dependencies (its pyproject's [project] dependencies) "
                   "at run time, on the SuperLink and on every SuperNode, with `uv sync` from the VMs' package "
                   "index, for every `flwr run` (cached on each VM after the first) [default: on, from Flower "
                   "1.29; before 1.29 Flower cannot: use --extra-pip].")
@CLIENT_DATA
@JSON
def start(cluster, insecure, extra_pip, index_url, app, runtime_deps, client_data, as_json):
    """Run Flower on the cluster: SuperLink and SuperNodes as systemd services, secure by default (TLS with a
    cluster CA, SuperNode keys registered with the SuperLink), and a `[superlink.CLUSTER]` connection in your
    ~/.flwr/config.toml. Safe to re-run: nothing is reinstalled or restarted without a change.

    \b
    Examples:
      flwrazure start --extra-pip numpy
      flwrazure start --cluster exp-2 --app ./my-app
      flwrazure start --insecure        # the seed guide's setup, for a quick try only
      flwrazure start --extra-pip scikit-learn --client-data ./data   # ./data/1, ./data/2, …
    """
    from flwrazure import ui
    from flwrazure.commands import exclusive
    from flwrazure.commands import start as start_cmd
    from flwrazure.spec import cluster_name, packages

    packages(index_url, extra_pip)
    with exclusive(cluster_name(cluster), "start"):
        result = start_cmd.run(cluster_name(cluster), insecure, list(extra_pip), index_url, app, runtime_deps,
                               client_data=client_data)
    if as_json:
        ui.emit_json(result)
        return
    mode = "TLS + SuperNode authentication" if result["secure"] else "INSECURE"
    _out(f"Flower runs on cluster {cluster}: SuperLink {result['superlink']} ({mode}).")
    _connection_line(cluster, result)
    ui.next_steps(result["next"])


def _out(text: str) -> None:
    """A line of the result (stdout), as plain text (no markup: names and paths may hold brackets)."""
    from rich.markup import escape

    from flwrazure import ui

    ui.out(escape(text))


def _cost_line(estimate: dict | None, paused: bool = False) -> None:
    from flwrazure.plan.cost import describe

    _out(describe(estimate, paused))


def _network_line(cluster: str, network: dict) -> None:
    """--private-clients: how the client VMs reach out and are reached (nothing for the default layout)."""
    if network["layout"] == "public":
        return
    _out(f"Private clients: no public IPs; outbound through NAT gateway {network['nat_gateway'] or '(missing)'} "
         f"({network['nat_public_ip'] or 'no address'}); Fleet port open to {network['subnet']} only; SSH through "
         f"the server: flwrazure ssh --cluster {cluster} client-1")


def _connection_line(cluster: str, result: dict) -> None:
    if result["flwr_config"]:
        _out(f"Connection {cluster} written to {result['flwr_config']}.")


@click.command("up")
@CLUSTER
@_create_options
@click.option("--insecure", is_flag=True, help="No TLS, no SuperNode authentication (not for production).")
@click.option("--extra-pip", multiple=True, metavar="PKG", help="Packages your app needs, on every VM.")
@click.option("--index-url", metavar="URL", help="Package index for the VMs.")
@click.option("--runtime-deps/--no-runtime-deps", default=None, help="See `flwrazure start --help`.")
@click.option("--app", type=click.Path(path_type=Path, exists=True, file_okay=False), metavar="DIR",
              help="Your Flower app (see `flwrazure start --help`).")
@click.option("--control-source", metavar="IP|CIDR|any|me",
              help="Who may reach the Control port (the flwr CLI: submit runs), independent of --ssh-source "
                   "[default: me, your public address, detected].")
@click.option("--allow-public-control", is_flag=True,
              help="Allow --control-source any: anyone could then submit runs, i.e. run code on every VM.")
@CLIENT_DATA
@JSON
def up(cluster, clients, cloud, subscription, resource_group, location, vm_size, server_vm_size, client_vm_size,
       admin_user, ssh_key, ssh_source, flwr_version, use_existing_group, private_clients, insecure, extra_pip,
       index_url, runtime_deps, app, control_source, allow_public_control, client_data, as_json, spot=False,
       max_price=None):
    """create-cluster + open-ports (Control port from your address, or --control-source) + start, in one
    resumable command: from nothing to a federation with every SuperNode online.

    \b
    Examples:
      flwrazure up --cloud azure --clients 2 --extra-pip numpy
      flwrazure local up && flwrazure up --cloud local --extra-pip numpy
    """
    import time

    from flwrazure import ui, workers
    from flwrazure.commands import create, exclusive, ports
    from flwrazure.commands import start as start_cmd
    from flwrazure.spec import packages

    began = time.monotonic()
    packages(index_url, extra_pip)  # first, as start does: the values bad input is most often made of
    control = _control_sources(control_source, allow_public_control, _version(flwr_version))
    spec = _spec(cluster, clients, cloud, subscription, resource_group, location, vm_size, server_vm_size,
                 client_vm_size, admin_user, ssh_source, flwr_version, use_existing_group, private_clients, spot,
                 max_price)
    start_cmd.check(spec.flwr_version, not insecure, app)
    # the layout and names, before anything is created (start reads the files)
    start_cmd.check_client_data(client_data, spec.clients, digests=False)
    start_cmd.check_hosts(spec.cloud)
    # one hold for all three steps (the open-ports thread shares it): no other command slips in between them
    with exclusive(cluster, "up", create=True), \
            workers.pool(1, "open-ports") as side:
        created = create.run(spec, ssh_key, operator_address=control is None, extra_pip=list(extra_pip),
                             index_url=index_url)
        created_seconds = round(time.monotonic() - began, 1)
        control = control or (created["operator_ip"],)
        # open-ports beside start: its rule writes (one NSG, one at a time: seconds each on Azure) need nothing
        # start does, and start needs only SSH, which create-cluster's rule admits; a SuperNode up before the
        # Fleet rule retries until it connects
        opening = side.submit(ports.run, cluster, control, False, allow_public=True)  # checked above
        started = start_cmd.run(cluster, insecure, list(extra_pip), index_url, app, runtime_deps,
                                client_data=client_data)
        opened = opening.result()
    result = {"cluster": cluster, "vms": created["vms"], "rules": opened["rules"], **started,
              "network": created["network"], "cost": created.get("cost"), "created_seconds": created_seconds,
              "seconds": round(time.monotonic() - began, 1)}
    if as_json:
        ui.emit_json(result)
        return
    _vm_table(f"Cluster {cluster} ({created['resource_group']}, flwr {created['flwr_version']})", created["vms"], cluster)
    _out(f"Flower is up in {result['seconds']} s: SuperLink {started['superlink']}.")
    _network_line(cluster, created["network"])
    _connection_line(cluster, started)
    _cost_line(created.get("cost"))
    ui.next_steps(started["next"], f"   (when done: flwrazure teardown --cluster {cluster})")


def _control_sources(text: str | None, allow_public: bool, version: str) -> tuple[str, ...] | None:
    """`up --control-source`: the given sources (any only with --allow-public-control, refused before anything is
    asked of the cloud), or None for the operator's detected address."""
    from flwrazure.plan import rules

    sources = rules.parse_control_source(text, "--control-source")
    if sources is not None:
        port = versions.port_plan(version).control
        rules.check_control_sources(sources, allow_public, port, "--control-source")
    return sources
