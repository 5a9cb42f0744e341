"""Thread pools that let go at once when the command is interrupted.

`with ThreadPoolExecutor(...) as pool:` waits for every running task when the block is left, on Ctrl-C too: start
waited for every VM's pip install (minutes) before it could say it was interrupted. `pool()` waits as that does
when the block ends, normally or by an error; when Ctrl-C (KeyboardInterrupt) leaves it, the tasks not started yet
are cancelled and the running ones are left to the process's exit (the callers close their SSH connections, so
those tasks end at their next read)."""

from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor


@contextlib.contextmanager
def pool(max_workers: int, name: str = ""):
    executor = ThreadPoolExecutor(max_workers=max(1, max_workers), thread_name_prefix=name)
    interrupted = False
    try:
        yield executor
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        try:
            if not interrupted:
                executor.shutdown(wait=True)
        except KeyboardInterrupt:  # Ctrl-C while waiting for the tasks at the block's end
            interrupted = True
            raise
        finally:
            if interrupted:
                executor.shutdown(wait=False, cancel_futures=True)
