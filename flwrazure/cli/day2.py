"""Day-2 commands: scale, pause, resume, logs, ssh, doctor. Parse options, call flwrazure.commands, render."""

from __future__ import annotations

import click

from flwrazure.cli.cluster import CLUSTER, JSON, YES, _cost_line, _out, _vm_table, confirm


@click.command("scale")
@CLUSTER
@click.option("--clients", required=True, type=int, help="The number of SuperNode VMs to have (1-100).")
@click.option("--force", is_flag=True, help="Remove or restart SuperNodes even while a run is in progress.")
@click.option("--repartition", is_flag=True,
              help="Restart every SuperNode whose num-partitions differs from N, so all agree (between runs).")
@YES
@JSON
def scale(cluster, clients, force, repartition, yes, as_json):
    """Grow or shrink a live federation to N client VMs. Growing adds clients N+1.. (VMs, Fleet rule, flwr,
    key registration, SuperNodes) without restarting or re-registering the existing ones; shrinking removes the
    highest-numbered clients: their SuperNodes are stopped and unregistered, the Fleet rule narrowed, then their
    VMs, NICs, IPs and disks deleted; it returns once the SuperLink no longer offers them to new runs. Names stay 1..N; partition-id = client number - 1. SuperNodes keep the
    num-partitions they were started with unless --repartition. Re-run to finish an interrupted scale.

    \b
    Examples:
      flwrazure scale --clients 5
      flwrazure scale --clients 2 --cluster exp-2 --yes   # shrinking deletes VMs: asks unless --yes
      flwrazure scale --clients 3 --repartition     # all SuperNodes agree on num-partitions=3
    """
    from rich.markup import escape

    from flwrazure import ui
    from flwrazure.commands import exclusive
    from flwrazure.commands import scale as scale_cmd
    from flwrazure.spec import cluster_name
    from flwrazure.workstation import state

    had = state.load(cluster_name(cluster)).get("clients", 0)
    if clients < had and not yes and 1 <= clients:
        from flwrazure.plan import names

        leaving = [names.client(cluster, i).vm for i in range(clients + 1, had + 1)]
        which = ", ".join(leaving) if len(leaving) <= 3 else f"{leaving[0]} .. {leaving[-1]}"
        confirm(f"Delete {which} (VM, NIC, public IP and OS disk of each)?")
    with exclusive(cluster_name(cluster), "scale"):
        result = scale_cmd.run(cluster_name(cluster), clients, force, repartition)  # progress: stderr
    if as_json:
        ui.emit_json(result)
        return
    if result.get("vms"):
        _vm_table(f"Cluster {cluster}: {result['from']} -> {result['to']} client(s)", result["vms"], cluster)
    what = []
    if result["joined"]:
        what.append(f"joined: {', '.join(result['joined'])}")
    if result["left"]:
        what.append(f"left: {', '.join(result['left'])}")
    if result["unregistered"]:
        what.append(f"unregistered: {', '.join(result['unregistered'])}")
    _out(f"Scaled cluster {cluster} to {result['to']} client(s) in {result['seconds']} s"
         + (f" ({'; '.join(what)})" if what else " (nothing to change)") + ".")
    if result["mixed_partitions"]:
        groups = "; ".join(f"num-partitions={n}: {', '.join(vms)}" for n, vms in result["mixed_partitions"].items())
        ui.warn(escape(f"SuperNodes disagree on num-partitions ({groups}); align them between runs."))
    _cost_line(result.get("cost"))
    ui.next_steps(result["next"])


@click.command("pause")
@CLUSTER
@JSON
def pause(cluster, as_json):
    """Deallocate every VM of the cluster: compute billing stops; static public IPs, OS disks, keys,
    certificates and rules are kept (and still billed: IPs and disks). `flwrazure resume` starts them again.

    \b
    Examples:
      flwrazure pause
      flwrazure pause --cluster exp-2 --json
    """
    from flwrazure import ui
    from flwrazure.commands import exclusive, power
    from flwrazure.spec import cluster_name

    with exclusive(cluster_name(cluster), "pause"):
        result = power.pause(cluster)
    if as_json:
        ui.emit_json(result)
        return
    _out(f"Cluster {cluster} paused in {result['seconds']} s: {len(result['deallocated'])} VM(s) deallocated"
         + (f", {len(result['already'])} already were" if result["already"] else "") + ".")
    _cost_line(result.get("cost"), paused=True)
    ui.next_steps(result["next"])


@click.command("resume")
@CLUSTER
@JSON
def resume(cluster, as_json):
    """Start the VMs of a paused cluster and bring Flower back: waits until the SuperLink and every SuperNode
    are online (the SuperLink keeps its run history).

    \b
    Examples:
      flwrazure resume
      flwrazure resume --cluster exp-2
    """
    from flwrazure import ui
    from flwrazure.commands import exclusive, power
    from flwrazure.spec import cluster_name

    with exclusive(cluster_name(cluster), "resume"):
        result = power.resume(cluster)  # progress: stderr
    if as_json:
        ui.emit_json(result)
        return
    online = result["supernodes_online"]
    tail = f"; {online} SuperNode(s) online" if online is not None else ""
    _out(f"Cluster {cluster} resumed in {result['seconds']} s ({len(result['started'])} VM(s) started{tail}).")
    ui.next_steps(result["next"])


@click.command("logs")
@CLUSTER
@click.argument("vms", nargs=-1, metavar="[VM]...")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines until Ctrl-C (survives VM restarts).")
@click.option("--since", metavar="DURATION", help="Only lines from the last DURATION (90s, 10m, 2h, 1d).")
@click.option("-n", "--lines", type=int, metavar="N", help="The last N lines of each VM [default: 10, or all with "
                                                             "--since].")
def logs(cluster, vms, follow, since, lines):
    """The Flower services' logs (SuperLink on the server, SuperNode on each client), merged in time order, each
    line prefixed by its VM. VMs by name (flower-client-2) or short (server, client-2); default all.

    \b
    Examples:
      flwrazure logs
      flwrazure logs client-1 client-2 --since 10m
      flwrazure logs --follow --lines 0
    """
    from flwrazure.commands import logs as logs_cmd
    from flwrazure.spec import cluster_name

    logs_cmd.run(cluster_name(cluster), list(vms), follow, since, lines)


@click.command("ssh", context_settings={"ignore_unknown_options": True})
@CLUSTER
@click.option("--all", "all_vms", is_flag=True, help="Run the command on every VM at once (prefixed output).")
@click.argument("args", nargs=-1, type=click.UNPROCESSED, metavar="[VM] [-- COMMAND...]")
def ssh(cluster, all_vms, args):
    """A shell on a VM (default the server) with the cluster's key and pinned host key; or, after `--`, run a
    command there — on every VM with --all (exit code non-zero when it failed on any VM).

    \b
    Examples:
      flwrazure ssh                        # a shell on the server VM
      flwrazure ssh client-2 -- journalctl -u flower-supernode -n 20
      flwrazure ssh --all -- hostname
    """
    import sys

    from flwrazure.commands import shell
    from flwrazure.errors import UsageError
    from flwrazure.spec import cluster_name

    raw = sys.argv[1:]
    command = raw[raw.index("--") + 1:] if "--" in raw else []
    head = list(args[:len(args) - len(command)]) if command else list(args)
    if len(head) > 1:
        raise UsageError(f"one VM at a time (got {' '.join(head)}); put the command after `--`: "
                         f"flwrazure ssh {head[0]} -- {' '.join(head[1:])}")
    sys.exit(shell.run(cluster_name(cluster), head[0] if head else None, command, all_vms))


@click.command("doctor")
@CLUSTER
@click.option("--local-only", is_flag=True, help="Only the checks from your side (no connection to the VMs).")
@click.option("--renew-cert", is_flag=True, help="Issue a new SuperLink certificate (same CA) and restart the "
                                                 "SuperLink with it; SuperNodes reconnect on their own.")
@JSON
def doctor(cluster, local_only, renew_cert, as_json):
    """Check the cluster from your side and the VMs', each check pass / fail with the fix: VMs running, Flower
    services active, SuperNodes online (with their last log lines), your address still inside the SSH and
    Control sources, Control rule present and port reachable, the SuperLink certificate valid for the address in
    your flwr connection and not near expiry, your flwr CLI of the cluster's release, the connection matching,
    clock skew. Exit code 1 when any check fails.

    \b
    Examples:
      flwrazure doctor
      flwrazure doctor --local-only --json
      flwrazure doctor --renew-cert
    """
    import sys

    from rich.markup import escape

    from flwrazure import ui
    from flwrazure.commands import doctor as doctor_cmd
    from flwrazure.spec import cluster_name

    cluster_name(cluster)
    if renew_cert:
        from flwrazure.commands import exclusive

        with exclusive(cluster, "doctor --renew-cert"):
            result = doctor_cmd.renew_cert(cluster, show=not as_json)
        if as_json:
            ui.emit_json(result)
        return
    result = doctor_cmd.run(cluster, local_only)
    if as_json:
        ui.emit_json(result)
    else:
        marks = {True: "[green]pass[/green]", False: "[red]FAIL[/red]", None: "[dim]skip[/dim]"}
        for c in result["checks"]:  # the report is the result: stdout
            ui.out(f"{marks[c['ok']]}  {escape(c['name'])}: {escape(c['detail'])}")
            if c["ok"] is False and c["fix"]:
                ui.out(f"      fix: [bold]{escape(c['fix'])}[/bold]")
        ui.out(f"{result['passed']} passed, {result['failed']} failed, {result['skipped']} skipped.")
    if not result["ok"]:
        sys.exit(1)
