"""`flwrazure silo`: cross-silo federations (issue 24). The operator's commands (invite, admit, list, remove) and the
silo's (join, leave) in one group; each subcommand's module is imported when it runs."""

from __future__ import annotations

from pathlib import Path

import click

from flwrazure.cli import LazyGroup
from flwrazure.cli.cluster import JSON, YES, confirm

# name -> (module, attribute, one-line help), as the top-level COMMANDS; the silo's side adds its own entries
SUBCOMMANDS: dict[str, tuple[str, str, str]] = {
    "invite": ("flwrazure.cli.silo", "invite", "Write an invitation for a silo to join the cluster (operator)."),
    "admit": ("flwrazure.cli.silo", "admit", "Check a silo's join request, register its SuperNode (operator)."),
    "list": ("flwrazure.cli.silo", "list_silos", "Each silo of the cluster: address, node id, online state."),
    "remove": ("flwrazure.cli.silo", "remove", "Unregister a silo's SuperNode and close the Fleet rule to it."),
    "join": ("flwrazure.cli.silo_member", "join", "Join a cluster with an invitation: a machine runs your SuperNode (silo)."),
    "leave": ("flwrazure.cli.silo_member", "leave", "Stop your SuperNode and delete what join created (silo)."),
    "status": ("flwrazure.cli.silo_member", "status", "Your silos: where each SuperNode runs, online or not (silo)."),
    "logs": ("flwrazure.cli.silo_member", "logs", "The last lines of your SuperNode's log (silo)."),
}

CLUSTER_REQUIRED = click.option("--cluster", required=True, metavar="C", help="The operator's cluster.")


class SiloGroup(LazyGroup):
    table = SUBCOMMANDS


@click.group("silo", cls=SiloGroup)
def silo() -> None:
    """Cross-silo federations: SuperNodes run by other organisations, on their own machines or subscriptions.

    \b
    The operator (who runs the cluster's SuperLink):
      flwrazure silo invite hospital-a --cluster flower      # writes hospital-a.invitation.json
      flwrazure silo admit hospital-a.join-request.json --cluster flower
      flwrazure silo list --cluster flower
      flwrazure silo remove hospital-a --cluster flower
    \b
    The silo's admin (own FLWRAZURE_HOME, own credentials):
      flwrazure silo join hospital-a.invitation.json --cloud azure ...
    See docs/silos.md.
    """


def _cluster(value: str) -> str:
    from flwrazure.spec import cluster_name

    return cluster_name(value)


@click.command("invite")
@click.argument("name")
@CLUSTER_REQUIRED
@click.option("--expires", default="7d", show_default=True, metavar="DURATION",
              help="How long the invitation can be used: 30m, 12h, 7d, 2w (10 minutes to 90 days).")
@click.option("-o", "--output", "output", type=click.Path(path_type=Path), metavar="FILE",
              help="Where to write it [default: NAME.invitation.json here]; an existing file is replaced only "
                   "when it is an earlier invitation of the same silo and cluster.")
@click.option("--json", "as_json", is_flag=True, help="Print {invitation, ca_fingerprint, …} as JSON (for scripts).")
def invite(name, cluster, expires, output, as_json):
    """Invite silo NAME to the cluster: writes an invitation file (0600) with the SuperLink's address and Fleet
    port, the cluster's CA certificate, its Flower version, an expiry and a one-time token; nothing secret of
    yours. Send the file to the silo's admin, and the printed CA fingerprint by another channel. Inviting the
    same silo again replaces its unused invitation (the old token stops working).

    \b
    Examples:
      flwrazure silo invite hospital-a --cluster flower
      flwrazure silo invite lab-3 --cluster exp-2 --expires 2d -o /tmp/lab-3.json --json
    """
    from rich.markup import escape

    from flwrazure import ui
    from flwrazure.commands import exclusive
    from flwrazure.commands import silo as cmd
    from flwrazure.plan import silo as plan

    with exclusive(_cluster(cluster), "silo invite"):
        result = cmd.invite(cluster, name, expires, output)
    if result["shared_port"]:
        ui.warn("this cluster's Flower shares one port for Fleet and Control: a silo that reaches the Fleet API "
                "reaches the Control API too and could submit runs (run code on every SuperNode, other silos' "
                "included). Invite only silos you trust that far (docs/silos.md).")
    if as_json:
        ui.emit_json(result)
        return
    ui.info(escape(f"Invitation for silo {name} written to {result['invitation']} (valid until {result['expires']})."))
    ui.info(f"CA certificate SHA-256 fingerprint: [bold]{result['ca_fingerprint']}[/bold]")
    ui.info(escape(f"Next: {plan.next_step_invite(name, result['invitation'], result['ca_fingerprint'])}"))


@click.command("admit")
@click.argument("request", type=click.Path(path_type=Path), metavar="REQUEST")
@CLUSTER_REQUIRED
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (for scripts).")
def admit(request, cluster, as_json):
    """Admit a silo: checks its join REQUEST (token, expiry, cluster, Flower version; an invitation is used once),
    registers its SuperNode's public key at the SuperLink and adds its egress address(es) to the Fleet rule (only
    the Fleet port; a silo gets no SSH). Re-running with the same request changes nothing.

    \b
    Examples:
      flwrazure silo admit hospital-a.join-request.json --cluster flower
    """
    from rich.markup import escape

    from flwrazure import ui
    from flwrazure.commands import exclusive
    from flwrazure.commands import silo as cmd
    from flwrazure.plan import silo as plan

    with exclusive(_cluster(cluster), "silo admit"):
        result = cmd.admit(cluster, request)
    if as_json:
        ui.emit_json(result)
        return
    how = "was admitted already" if result["already_admitted"] else "admitted"
    fleet = f"Fleet port open to {', '.join(result['egress'])}" if result["rules"] is not None else \
        "no Fleet rule yet (open-ports adds it)"
    ui.info(escape(f"Silo {result['silo']} {how}: node {result['node_id']}, {fleet}."))
    ui.info(escape(f"Next: {plan.next_step_admit(result['silo'], cluster)}"))


@click.command("list")
@CLUSTER_REQUIRED
@JSON
def list_silos(cluster, as_json):
    """Each silo of the cluster: its address, node id, state (online/offline from the SuperLink; invited; removed)
    and when it was last seen.

    \b
    Examples:
      flwrazure silo list --cluster flower
      flwrazure silo list --cluster flower --json
    """
    from flwrazure import ui
    from flwrazure.commands import silo as cmd

    result = cmd.list_silos(_cluster(cluster))
    if as_json:
        ui.emit_json(result)
        return
    if not result["silos"]:
        ui.info(f"Cluster {cluster} has no silos: `flwrazure silo invite NAME --cluster {cluster}` invites one.")
        return
    table(f"Silos of cluster {cluster}", result["silos"])


def table(title: str, rows: list[dict]) -> None:
    from flwrazure import ui

    ui.table(title, ["Silo", "Address", "Node id", "State", "Last seen"],
             [[r["silo"], r["address"] or "", r["node_id"] or "",
               r["state"] + (f" (until {r['expires']})" if r.get("expires") else ""), r["last_seen"] or ""]
              for r in rows], keep=("Silo",))


@click.command("remove")
@click.argument("name")
@CLUSTER_REQUIRED
@YES
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (for scripts).")
def remove(name, cluster, yes, as_json):
    """Remove silo NAME: unregister its SuperNode's key at the SuperLink (the SuperNode is refused from then on)
    and narrow the Fleet rule to the others; an unused invitation stops working. Asks unless --yes.

    \b
    Examples:
      flwrazure silo remove hospital-a --cluster flower
      flwrazure silo remove lab-3 --cluster exp-2 --yes
    """
    from rich.markup import escape

    from flwrazure import ui
    from flwrazure.commands import exclusive
    from flwrazure.commands import silo as cmd
    from flwrazure.plan import silo as plan

    plan.silo_name(name, "NAME")
    _cluster(cluster)
    if not yes:
        confirm(f"Remove silo {name} from cluster {cluster} (its SuperNode is refused from then on)?")
    with exclusive(cluster, "silo remove"):
        result = cmd.remove(cluster, name)
    if as_json:
        ui.emit_json(result)
        return
    done = {"admitted": "removed: its key is unregistered and the Fleet rule closed to it",
            "invited": "removed: its invitation can no longer be used",
            "removed": "was removed already"}.get(result["was"], "removed")
    ui.info(escape(f"Silo {name} {done}."))
    ui.info("Next: the silo's admin may now run `flwrazure silo leave` on their side.")
