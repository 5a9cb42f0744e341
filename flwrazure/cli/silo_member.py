"""`flwrazure silo join|leave|status|logs`: the silo's side of a cross-silo federation (the group and the
operator's commands are in cli/silo.py). Parse options, call flwrazure.commands.silo_member, render."""

from __future__ import annotations

from pathlib import Path

import click

from flwrazure.cli.cluster import JSON, YES, confirm

SILO_PICK = [click.option("--cluster", metavar="NAME", help="The cluster joined (when this home joined several)."),
             click.option("--silo", "silo_name", metavar="NAME", help="The silo (when this home joined several).")]


def _pick(fn):
    for option in reversed(SILO_PICK):
        fn = option(fn)
    return fn


@click.command("join")
@click.argument("invitation", required=False, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--cloud", type=click.Choice(["azure", "local"]), help="Create one VM for the SuperNode there, in a "
              "resource group of your own.")
@click.option("--subscription", help="With --cloud azure: the subscription (default: AZURE_SUBSCRIPTION_ID, az's).")
@click.option("-l", "--location", default="eastus", show_default=True, help="With --cloud: the VM's region.")
@click.option("--vm-size", default="Standard_D2s_v3", show_default=True, help="With --cloud: the VM's size.")
@click.option("--ssh-source", metavar="IP|CIDR", help="With --cloud: who may SSH to the VM (default: your address, "
              "detected).")
@click.option("--host", metavar="USER@ADDR", help="Run the SuperNode on a machine you run (SSH as USER).")
@click.option("--ssh-key", type=click.Path(path_type=Path, dir_okay=False), help="With --host: the key to log in.")
@click.option("--egress", metavar="IP[,IP]", help="The address(es) the SuperLink sees the SuperNode connect from "
              "(default: the VM's public IP; with --host, the machine's address).")
@click.option("--data", type=click.Path(path_type=Path, file_okay=False), help="Your data directory, copied to the "
              "machine (~/flwrazure/data, 0600 files); only changed files are copied again.")
@click.option("--data-path", metavar="PATH", help="A data directory already on the machine.")
@click.option("--ca-fingerprint", metavar="SHA256", help="The CA fingerprint the operator sent you by another "
              "channel (else join shows it and asks).")
@click.option("-o", "--output", "request", type=click.Path(path_type=Path, dir_okay=False),
              help="Where to write the join request (default: SILO.join-request.json).")
@click.option("--resume", is_flag=True, help="Finish or re-check an earlier join (INVITATION, --cloud/--host and "
              "the data default to what it was given).")
@click.option("--wait", is_flag=True, help="Wait until the SuperNode is online (the operator admitted it).")
@click.option("--timeout", type=click.FloatRange(1), default=1800, show_default=True,
              help="With --wait: seconds to wait.")
@_pick
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (for scripts; -o names the file).")
def join(invitation, cloud, subscription, location, vm_size, ssh_source, host, ssh_key, egress, data, data_path, ca_fingerprint,
         request, resume, wait, timeout, cluster, silo_name, as_json):
    """Join a cluster as a silo with the INVITATION its operator sent: a machine (a new VM with --cloud, or yours
    with --host) gets the invited Flower version, a SuperNode key pair made on it (the private key never leaves
    it), the CA certificate and your data, and runs a SuperNode that connects out to the SuperLink (no inbound
    port) and retries until the operator admits it. Writes the join request (public key, egress address, token)
    to send back. Nothing is created before the CA fingerprint is confirmed. Re-run to converge.

    \b
    Examples:
      flwrazure silo join hospital-a.invitation.json --cloud azure --data ./data --ca-fingerprint AB:CD:…
      flwrazure silo join inv.json --host admin@198.51.100.4 --ssh-key ~/.ssh/id_ed25519 --data-path /srv/data
      flwrazure silo join --resume --wait
    """
    import sys

    from flwrazure import ui
    from flwrazure.commands import silo_member as cmd

    if invitation is None:
        if not resume:
            raise click.UsageError("give the INVITATION file (or --resume to continue an earlier join).")
        rec = cmd.find(cluster, silo_name)
        invitation = cmd.record_dir(rec["cluster"], rec["silo"]) / "invitation.json"
    job = cmd.check(invitation, cloud=cloud, host=host, ssh_key=ssh_key, subscription=subscription,
                    location=location, vm_size=vm_size, egress=egress, data=data, data_path=data_path,
                    output=request, resume=resume, ca_fingerprint=ca_fingerprint,
                    ssh_source=ssh_source)
    if not cmd.check_fingerprint(job, ca_fingerprint, sys.stdin.isatty()):
        ui.info(f"The invitation to cluster {job.invitation.cluster} (silo {job.invitation.silo}) carries a CA "
                f"certificate with SHA-256 fingerprint\n  {job.fingerprint}")
        click.confirm("Is this the fingerprint the operator sent you?", abort=True, err=True)
    result = cmd.run(job, wait, timeout, show=not as_json)
    if as_json:
        ui.emit_json(result)
    else:
        _said(result)
    if wait and result["state"] != "online":  # --wait: exit 1 when it did not come online in time
        raise SystemExit(1)


def _said(result: dict) -> None:
    from rich.markup import escape

    from flwrazure import ui

    ui.info(escape(f"Join request: {result['join_request']} (public key of the SuperNode, egress "
            f"{', '.join(result['egress'])}, token). SuperNode: {result['state']}"
            + (f" (node id {result['node_id']})" if result["node_id"] is not None else "") + "."))
    from flwrazure.commands import silo_member as cmd

    if told := cmd.told(result):
        ui.info(escape(f"Next: {told}"))


@click.command("leave")
@_pick
@YES
@JSON
def leave(cluster, silo_name, yes, as_json):
    """Stop this silo's SuperNode and delete what `silo join` created: the resource group it made (the VM and
    everything in it), or on a --host machine the SuperNode service and the files join installed. The join
    request file you were given stays.

    \b
    Examples:
      flwrazure silo leave --yes
      flwrazure silo leave --cluster flower --silo hospital-a
    """
    from flwrazure import ui
    from flwrazure.commands import silo_member as cmd

    rec = cmd.find(cluster, silo_name)
    if not yes:
        what = (f"resource group {rec['resource_group']} with VM {rec['vm']}" if rec["mode"] == "cloud" else
                f"the SuperNode service and flwrazure's files on {rec['user']}@{rec['host']}")
        confirm(f"Leave cluster {rec['cluster']} as silo {rec['silo']} and delete {what}?")
    result = cmd.leave(rec, show=not as_json)
    if as_json:
        ui.emit_json(result)
        return
    ui.info(f"Left cluster {result['cluster']} (silo {result['silo']}); removed: "
            f"{'; '.join(result['removed']) or 'nothing (join had created nothing yet)'}.")


@click.command("status")
@_pick
@JSON
def status(cluster, silo_name, as_json):
    """This home's silos: where each SuperNode runs and whether the SuperLink accepted it (read on the silo's
    own machine). Exit 1 when a check fails.

    \b
    Examples:
      flwrazure silo status
      flwrazure silo status --json
    """
    from flwrazure import ui
    from flwrazure.commands import silo_member as cmd

    rows = [cmd.status(r) for r in ([cmd.find(cluster, silo_name)] if cluster or silo_name else cmd.records())]
    if as_json:
        # not `silos` (the operator's view of them, in `status`): one key, one type (docs/json.md)
        fixes = [c["fix"] for r in rows for c in r["checks"] if not c["ok"] and c["fix"].startswith("flwrazure ")]
        ui.emit_json({"joined_silos": rows, "next": list(dict.fromkeys(fixes))})
    else:
        ui.table("Silos joined from this FLWRAZURE_HOME", ["cluster", "silo", "machine", "service", "state", "node id"],
                 [[r["cluster"], r["silo"], f"{r['vm'] or ''} {r['host'] or ''}".strip(), r["service"] or "-",
                   r["state"] or "-", r["node_id"] or "-"] for r in rows])
        for r in rows:
            for c in r["checks"]:
                ui.info(f"{'✓' if c['ok'] else '✗'} {r['silo']}: {c['name']}")
            if r.get("error"):
                ui.warn(f"{r['silo']}: {r['error']}")
    if any(r.get("error") or not all(c["ok"] for c in r["checks"]) for r in rows):
        raise SystemExit(1)


@click.command("logs")
@_pick
@click.option("-n", "--lines", type=click.IntRange(1, 100000), default=100, show_default=True)
def logs(cluster, silo_name, lines):
    """The last lines of this silo's SuperNode log, from its machine.

    \b
    Example:
      flwrazure silo logs -n 50
    """
    from flwrazure.commands import silo_member as cmd

    click.echo(cmd.logs(cmd.find(cluster, silo_name), lines), nl=False)
