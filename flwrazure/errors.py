"""The product's error types. One place (cli.main) turns them into a message and an exit code; with --json also into
the error object of docs/json.md (`{"error": {"code", "message", "next"}}`) on stdout."""

from __future__ import annotations

import re


class FlwrazureError(Exception):
    """A failure the user can act on; the message says what happened and what to do. `kind`: the error object's
    stable code; `next`: the commands that act on it (default: those the message names in backticks); `retry`:
    re-running the same command is a next step."""

    exit_code = 1
    kind = "failed"
    retry = False

    def __init__(self, message: str = "", *, code: str | None = None, next: list[str] | None = None):
        super().__init__(message)
        if code:
            self.kind = code
        self.next = next


class UsageError(FlwrazureError):
    """Bad input: nothing was created or changed."""

    exit_code = 2
    kind = "usage"


# A command the message names: `flwrazure …`, `flwr …`, `az …`, `pip …` in backticks (prose never is)
_COMMAND = re.compile(r"`((?:flwrazure|flwr|az|pip) [^`]+)`")


def commands_in(message: str) -> list[str]:
    """The commands a message names, in order, each once."""
    return list(dict.fromkeys(_COMMAND.findall(message)))


def json_requested(argv: list[str]) -> bool:
    """--json, or `-o json` / `--output json` / `--output=json` / `-ojson`, before a `--` (after it the words are
    ssh's remote command)."""
    words = argv[:argv.index("--")] if "--" in argv else argv
    for i, word in enumerate(words):
        if word == "--json" or word.lower() in ("--output=json", "-ojson"):
            return True
        if word in ("-o", "--output") and i + 1 < len(words) and words[i + 1].lower() == "json":
            return True
    return False


def error_object(code: str, message: str, next: list[str] | None = None) -> dict:
    """What --json prints on stdout for a failure, beside the exit code (docs/json.md)."""
    return {"error": {"code": code, "message": message,
                      "next": list(next) if next is not None else commands_in(message)}}


def describe(exc: BaseException, argv: list[str]) -> dict:
    """A product error as its error object: the code (`usage`, `busy`, `azure.<Azure's code>`, …) and its
    next steps (given, or the commands its message names; first the same command line when a re-run helps)."""
    import shlex

    kind = exc.kind if isinstance(exc, FlwrazureError) else "failed"
    steps = getattr(exc, "next", None)
    steps = commands_in(str(exc)) if steps is None else list(steps)
    if getattr(exc, "retry", False):
        steps = list(dict.fromkeys([shlex.join(["flwrazure", *argv]), *steps]))
    return error_object(kind, str(exc), steps)


class Interrupted(FlwrazureError):
    """Ctrl-C: the message says what the command left and the command that finishes or removes it."""

    kind = "interrupted"
    exit_code = 130  # 128 + SIGINT, as a shell reports a process that Ctrl-C ended
