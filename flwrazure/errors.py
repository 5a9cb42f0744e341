"""The product's error types. One place (cli.main) turns them into a message and an exit code."""

from __future__ import annotations


class FlwrazureError(Exception):
    """A failure the user can act on; the message says what happened and what to do."""

    exit_code = 1


class UsageError(FlwrazureError):
    """Bad input: nothing was created or changed."""

    exit_code = 2


class Interrupted(FlwrazureError):
    """Ctrl-C: the message says what the command left and the command that finishes or removes it."""

    exit_code = 130  # 128 + SIGINT, as a shell reports a process that Ctrl-C ended
