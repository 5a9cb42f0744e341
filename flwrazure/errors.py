"""The product's error types. One place (cli.main) turns them into a message and an exit code."""

from __future__ import annotations


class FlwrazureError(Exception):
    """A failure the user can act on; the message says what happened and what to do."""

    exit_code = 1


class UsageError(FlwrazureError):
    """Bad input: nothing was created or changed."""

    exit_code = 2
