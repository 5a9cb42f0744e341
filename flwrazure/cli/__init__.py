"""The `flwrazure` command line. Click groups only; every subcommand module is imported on demand.

Keep this package light: `flwrazure --help` must not pay for the Azure SDK (0.4-2.3 s of imports).
"""

from __future__ import annotations

import importlib
import os
import sys

import click

from flwrazure import __version__

# name -> (module, attribute, one-line help shown by `flwrazure --help` without importing the module)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "up": ("flwrazure.cli.cluster", "up", "create-cluster + open-ports + start: from nothing to a federation."),
    "create-cluster": ("flwrazure.cli.cluster", "create_cluster", "Create the SuperLink and SuperNode VMs."),
    "open-ports": ("flwrazure.cli.cluster", "open_ports", "Open the Flower ports, each only to who needs it."),
    "start": ("flwrazure.cli.cluster", "start", "Run Flower (SuperLink, SuperNodes) on the VMs, secure by default."),
    "status": ("flwrazure.cli.cluster", "status", "Show VMs, rules, Flower version and ports of a cluster."),
    "list": ("flwrazure.cli.cluster", "list_clusters", "Every cluster of this FLWRAZURE_HOME: cloud, state, VMs, cost."),
    "scale": ("flwrazure.cli.day2", "scale", "Grow or shrink a live federation's SuperNodes (--clients N)."),
    "pause": ("flwrazure.cli.day2", "pause", "Deallocate every VM: compute billing stops, everything else is kept."),
    "resume": ("flwrazure.cli.day2", "resume", "Start the VMs of a paused cluster and bring Flower back online."),
    "logs": ("flwrazure.cli.day2", "logs", "The Flower services' logs from the VMs, merged in time order."),
    "ssh": ("flwrazure.cli.day2", "ssh", "A shell on a VM, or a command on every VM (--all)."),
    "doctor": ("flwrazure.cli.day2", "doctor", "Check the cluster from your side and the VMs', with the fix for each."),
    "teardown": ("flwrazure.cli.cluster", "teardown", "Delete everything flwrazure created for a cluster."),
    "silo": ("flwrazure.cli.silo", "silo", "Cross-silo federations: invite, admit, list and remove silos (SuperNodes "
             "of other organisations)."),
    "local": ("flwrazure.cli.local", "local", "Run the embedded local cloud (an offline Azure for trying flwrazure)."),
}


_verbose = False  # -v/--verbose, given before or after the subcommand


def _set_verbose(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    global _verbose
    _verbose = _verbose or bool(value)


def _with_verbose(command: click.Command) -> click.Command:
    """-v/--verbose accepted after the subcommand too (`flwrazure status -v`, as `az vm list -v`)."""
    if not any(p.name == "verbose_after" for p in command.params):
        command.params.append(click.Option(["-v", "--verbose", "verbose_after"], is_flag=True, expose_value=False,
                                           callback=_set_verbose, help="Show details (tracebacks) on failure."))
    for sub in getattr(command, "commands", {}).values():
        _with_verbose(sub)
    return command


class LazyGroup(click.Group):
    """A group that imports a subcommand's module only when that subcommand runs (or shows its own help).
    `table`: its subcommands (name -> module, attribute, one-line help); a sub-group sets its own."""

    table: dict[str, tuple[str, str, str]] = COMMANDS

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.table)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.table:
            return None
        module, attr, _ = self.table[cmd_name]
        return _with_verbose(getattr(importlib.import_module(module), attr))

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args:  # bare `flwrazure`: the help, and success (not a usage error)
            click.echo(ctx.get_help())
            ctx.exit(0)
        return super().parse_args(ctx, args)

    def resolve_command(self, ctx: click.Context, args: list[str]):
        name = args[0] if args else ""
        if name and not name.startswith("-") and name not in self.table:
            import difflib

            close = difflib.get_close_matches(name, list(self.table), n=2, cutoff=0.6)
            if close:
                ctx.fail(f"No such command {name!r}. Did you mean {' or '.join(repr(c) for c in close)}?")
        return super().resolve_command(ctx, args)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # the top-level help lists commands from COMMANDS, so it imports no subcommand module
        rows = [(name, self.table[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="flwrazure")
@click.option("-v", "--verbose", is_flag=True, help="Show details (requests, tracebacks) on failure.")
@click.pass_context
def cli(ctx: click.Context, verbose: bool) -> None:
    """Run Flower federations on Azure VMs: one SuperLink VM, N SuperNode VMs.

    \b
    Typical session on Azure:
      flwrazure create-cluster --cloud azure --clients 2
      flwrazure open-ports --source me   # the Control port from your address
      flwrazure start
      flwr run . flower
      flwrazure teardown
    \b
    The same offline, on the embedded local cloud (no Azure account needed):
      flwrazure local up
      flwrazure create-cluster --cloud local --clients 2
      ... then as above (a recorded cluster remembers its cloud)
    \b
    FLWRAZURE_CLOUD=local|azure sets the default of --cloud.
    """
    from flwrazure.workstation import settings

    settings.check_environment()  # a FLWRAZURE_* number that is none: one line, before anything happens
    _set_verbose(ctx, None, verbose)
    ctx.ensure_object(dict)
    ctx.obj["verbose"] = verbose


def _exit(code: int) -> None:
    """Exit; once the Azure SDK is loaded, skip interpreter teardown (~0.25 s of freeing the network and compute
    SDKs' module graph; ~65 ms after a create-cluster that loads neither). Everything the commands write is closed
    before they return, so only stdio needs flushing."""
    if "azure.core" in sys.modules:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def main() -> None:
    """Entry point: runs the CLI and maps product errors to one readable line and an exit code."""
    import gc

    # A command builds many short-lived objects (hundreds of SDK requests at once) and few cycles: with Python's
    # default gen-0 threshold (700) create-cluster for 100 clients ran ~370 collections and two full ones (~30 ms
    # each, every thread stopped), 0.11 s of CPU in all; at 10,000 it runs ~80 and no full one (0.02 s).
    gc.set_threshold(10_000, 10, 10)
    try:
        _run()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if exc.code is not None and not isinstance(exc.code, int):
            click.echo(exc.code, err=True)
        _exit(code)
    _exit(0)


def _run() -> None:
    from flwrazure.errors import FlwrazureError

    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except click.ClickException as exc:  # one line, as for every bad input
        click.echo(f"Error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except FlwrazureError as exc:
        if _verbose:
            import traceback

            traceback.print_exc()
        click.echo(f"Error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("Interrupted: re-run the same command to resume.", err=True)
        sys.exit(130)
