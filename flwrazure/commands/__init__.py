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


def server_admin(st: dict, target):
    """An SSH connection to the server VM and its admin flwr setup (the flwr CLI there, talking to its own
    SuperLink), or (None, None) when the server has no public address. For scale and the silo commands."""
    from flwrazure.azure import inventory
    from flwrazure.azure.target import require_hosts
    from flwrazure.plan import names, versions
    from flwrazure.plan.services import Layout
    from flwrazure.remote import flwradmin, ssh
    from flwrazure.workstation import state

    require_hosts(st["cloud"])
    snap = inventory.snapshot(target, st["resource_group"], ("pip",))
    ip = snap["pip"].get(names.server(st["cluster"]).public_ip.lower(), {}).get("properties", {}).get("ipAddress")
    if not ip:
        return None, None
    conn = ssh.wait(ip, names.server(st["cluster"]).vm, st["admin_user"], st["ssh_private_key"],
                    state.cluster_dir(st["cluster"]) / "known_hosts", timeout=60)
    layout = Layout(f"/home/{st['admin_user']}")
    adm = flwradmin.setup(conn, layout, st["flwr_version"], versions.port_plan(st["flwr_version"]).control,
                          bool(st.get("secure")))
    return conn, adm
