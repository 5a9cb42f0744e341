"""Terminal output: progress on stderr (so stdout stays data), tables, JSON. rich is imported on first use."""

from __future__ import annotations

import json
import os
import sys
import threading
from functools import lru_cache


@lru_cache(maxsize=2)
def console(stderr: bool = True):
    from rich.console import Console

    probe = Console(stderr=stderr)
    # piped output is read by people and tools alike: do not cut table cells at 80 columns (unless COLUMNS says
    # how wide to be)
    wide = probe.is_terminal or os.environ.get("COLUMNS", "").strip().isdigit()
    # emoji=False: rich turns ':name:' into an emoji, and the text printed here holds such runs (a SHA-256
    # fingerprint 5B:AB:A0 printed as 5B🆎A0, IPv6 addresses, Azure ids)
    return Console(stderr=stderr, highlight=False, emoji=False, width=None if wide else 200)


def info(message: str) -> None:
    """Progress, hints ("Next: …") and notes: stderr, so stdout stays data."""
    console().print(message)


def out(message: str) -> None:
    """A line of the command's result (what a script or `> file` keeps): stdout, as tables and JSON."""
    console(stderr=False).print(message)


def next_steps(commands: list[str], tail: str = "") -> None:
    """The "Next:" hint (stderr): the command(s) a result's `next` lists, the first in bold."""
    if commands:
        from rich.markup import escape

        more = "".join(f"  or  {escape(c)}" for c in commands[1:])
        console().print(f"Next: [bold]{escape(commands[0])}[/bold]{more}{tail}")


def warn(message: str) -> None:
    console().print(f"[yellow]Warning:[/yellow] {message}")


def emit_json(data) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")


def table(title: str | None, columns: list[str], rows: list[list], keep: tuple[str, ...] = (),
          plain: bool = False, prefix: str = "", err: bool = False) -> None:
    """keep: columns never cut nor wrapped (names: cut with an ellipsis, flower-client-1 and -2 would read the
    same), the others wrap when the terminal is narrow; plain: no borders (one line per row, as `ls -l`);
    prefix: what the first kept column's values may lose when the table is wider than the terminal (the cluster
    name of its VMs: `server`, `client-2` are what `flwrazure ssh` and `logs` take too), said in the title;
    err: on stderr (a table that is not the result, e.g. what a prompt is about to delete)."""
    from rich.table import Table

    cells = [["" if v is None else str(v) for v in row] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    edges = 2 * len(columns) if plain else 3 * len(columns) + 1
    if prefix and keep and sum(widths) + edges > console(stderr=False).width:
        at = columns.index(keep[0])
        if cells and all(r[at].startswith(prefix) for r in cells):
            for r in cells:
                r[at] = r[at][len(prefix):]
            title = f"{title or ''} (VMs {prefix}…)".strip()
    t = Table(title=title, title_justify="left", **({"box": None, "pad_edge": False} if plain else {}))
    for i, col in enumerate(columns):
        if col in keep:
            t.add_column(col, no_wrap=True, min_width=max([len(col), *(len(r[i]) for r in cells)]))
        else:
            t.add_column(col, overflow="fold")
    for row in cells:
        t.add_row(*row)
    console(stderr=err).print(t)


class Steps:
    """One progress bar per kind of resource ("public IPs 3/11"), safe to update from many threads. Without a
    terminal (CI, a pipe), no bar: one plain line per kind as it completes ("✓ public IPs 11/11  4.2 s")."""

    def __init__(self, totals: dict[str, int], enabled: bool = True):
        import time

        self.totals = {k: v for k, v in totals.items() if v}
        self.enabled = enabled and console().is_terminal
        self.plain = enabled and not self.enabled
        self._lock = threading.Lock()
        self._progress = None
        self._tasks: dict[str, int] = {}
        self._done: dict[str, int] = {}
        self._began = time.monotonic()

    def __enter__(self) -> Steps:
        if self.enabled:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
            )

            self._progress = Progress(SpinnerColumn(), TextColumn("{task.description:<24}"), BarColumn(),
                                      MofNCompleteColumn(), TimeElapsedColumn(), console=console(), transient=False)
            self._progress.start()
            for kind, total in self.totals.items():
                self._tasks[kind] = self._progress.add_task(kind, total=total)
        return self

    def advance(self, kind: str) -> None:
        if self._progress is not None and kind in self._tasks:
            with self._lock:
                self._progress.advance(self._tasks[kind])
        elif self.plain and kind in self.totals:
            import time

            with self._lock:
                self._done[kind] = n = self._done.get(kind, 0) + 1
                if n == self.totals[kind]:
                    console().print(f"✓ {kind} {n}/{n} {time.monotonic() - self._began:.1f} s")

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.stop()


class Milestones:
    """Progress of a command whose steps overlap (per-VM work in threads): a spinner while it runs (in a
    terminal; else its title, once), a "✓ what  12.3 s" line on stderr as each milestone is reached (seconds since the start), and those
    seconds kept in `seconds` (for --json and the benchmarks). Thread-safe."""

    def __init__(self, title: str, show: bool = True):
        import time

        self.title, self.show = title, show
        self.seconds: dict[str, float] = {}
        self._began = time.monotonic()
        self._lock = threading.Lock()
        self._status = None

    def __enter__(self) -> Milestones:
        if self.show and console().is_terminal:
            self._status = console().status(self.title)
            self._status.start()
        elif self.show:  # no spinner without a terminal: say what is starting, so a CI log is never silent
            console().print(f"{self.title}…")
        return self

    def __exit__(self, *exc) -> None:
        if self._status is not None:
            self._status.stop()

    def done(self, key: str, text: str, at: float | None = None) -> None:
        """at: when it was reached (time.monotonic()), if before now (seen by a command that went on)."""
        import time

        took = round((time.monotonic() if at is None else at) - self._began, 1)
        with self._lock:
            self.seconds[key] = took
            if self.show:
                console().print(f"[green]✓[/green] {text} [dim]{took:.1f} s[/dim]")
