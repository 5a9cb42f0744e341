"""One module per command: the flow of that command (connect, check, act, record, report). The Click layer
(flwrazure.cli) parses options and calls these; the plan modules decide, the azure modules act."""


def in_background(fn, *args, name: str):
    """fn(*args) in a thread of its own, as a Future: asked early, its answer taken when it is needed (a command
    that ends without it does not wait for it)."""
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
    future = pool.submit(fn, *args)
    pool.shutdown(wait=False)
    return future


def exclusive(cluster: str, command: str, create: bool = False):
    """A context for a command that changes the cluster: another process's such command on it is refused while
    this one runs (see workstation.state.exclusive). Ctrl-C then speaks of this cluster (commands.interrupt)."""
    from flwrazure.commands import interrupt
    from flwrazure.workstation import state

    interrupt.working_on(cluster, command)
    return state.exclusive(cluster, command, create)
