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
    "scale": ("flwrazure.cli.day2", "scale", "Grow or shrink a live federation's SuperNodes (--clients N)."),
    "pause": ("flwrazure.cli.day2", "pause", "Deallocate every VM: compute billing stops, everything else is kept."),
    "resume": ("flwrazure.cli.day2", "resume", "Start the VMs of a paused cluster and bring Flower back online."),
    "logs": ("flwrazure.cli.day2", "logs", "The Flower services' logs from the VMs, merged in time order."),
    "ssh": ("flwrazure.cli.day2", "ssh", "A shell on a VM, or a command on every VM (--all)."),
    "doctor": ("flwrazure.cli.day2", "doctor", "Check the cluster from your side and the VMs', with the fix for each."),
    "teardown": ("flwrazure.cli.cluster", "teardown", "Delete everything flwrazure created for a cluster."),
    "local": ("flwrazure.cli.local", "local", "Run the embedded local cloud (an offline Azure for trying flwrazure)."),
}


class LazyGroup(click.Group):
    """A group that imports a subcommand's module only when that subcommand runs (or shows its own help)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attr, _ = COMMANDS[cmd_name]
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # the top-level help lists commands from COMMANDS, so it imports no subcommand module
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="flwrazure")
@click.option("-v", "--verbose", is_flag=True, help="Show details (requests, tracebacks) on failure.")
@click.pass_context
def cli(ctx: click.Context, verbose: bool) -> None:
    """Run Flower federations on Azure VMs: one SuperLink VM, N SuperNode VMs.

    \b
    Typical session:
      flwrazure local up                 # optional: an offline cloud to try everything first
      flwrazure create-cluster --clients 2
      flwrazure open-ports --source <your-ip>
      flwrazure start
      flwr run . <cluster>
      flwrazure teardown
    """
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
        if "-v" in sys.argv or "--verbose" in sys.argv:
            import traceback

            traceback.print_exc()
        click.echo(f"Error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("Interrupted: re-run the same command to resume.", err=True)
        sys.exit(130)
