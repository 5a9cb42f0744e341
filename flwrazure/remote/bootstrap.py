"""Per-VM preparation: venv support (python3-venv through apt on a bare image, after cloud-init and the first-boot
apt jobs let go), a venv with the cluster's flwr (and the app's extra packages), skipped when a marker says exactly
this is already installed."""

from __future__ import annotations

import shlex

from flwrazure.errors import FlwrazureError
from flwrazure.plan import bootstrap as plan
from flwrazure.plan import services
from flwrazure.plan.services import Layout
from flwrazure.remote.ssh import output, put_text, run, succeeds

APT_TIMEOUT = 900  # seconds: first-boot unattended-upgrades can hold the locks for many minutes on Azure
INSTALL_TIMEOUT = 900  # seconds a pip install may take, and may be waited for


def ensure_venv_support(conn, name: str, probe: str = plan.VENV_PROBE, timeout: int = APT_TIMEOUT) -> bool:
    """Install python3-venv when `probe` fails; True when something was installed."""
    if succeeds(conn, f"{probe} >/dev/null 2>&1"):
        return False
    result = conn.run(plan.wait_cloud_init(timeout), hide=True, warn=True, in_stream=False, timeout=timeout + 60)
    if result.exited == plan.CLOUD_INIT_EXIT:
        raise FlwrazureError(f"VM {name}: cloud-init was still provisioning after {timeout} s "
                             f"({' | '.join(result.stdout.strip().splitlines())}). Check the VM's boot "
                             "diagnostics, then re-run `flwrazure start`.")
    result = conn.run(plan.apt_install(["python3-venv"], timeout), hide=True, warn=True, in_stream=False,
                      timeout=timeout + 120)
    if result.exited == plan.LOCKED_EXIT:
        holder = plan.lock_holder(result.stderr) or "another apt or dpkg process"
        raise FlwrazureError(f"VM {name}: apt's lock was still held by {holder} after {timeout} s (first-boot "
                             "updates?). Re-run `flwrazure start` once it has finished.")
    if result.failed:
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise FlwrazureError(f"VM {name}: installing python3-venv failed (exit {result.exited}): {' | '.join(tail)}")
    return True


def ensure_flwr(conn, layout: Layout, version: str, extra: list[str], index_url: str | None, name: str = "",
                venv_probe: str = plan.VENV_PROBE) -> bool:
    """Returns True when something was installed.

    The index URL (which may carry a token) reaches pip only through the services' environment file (0600, the
    admin user's): not pip's argv (visible in `ps` to every user of the VM), not the marker (a digest there)."""
    want = plan.marker_text(version, extra, index_url)
    marker, env_file = layout.path("installed.json"), layout.path(services.ENV_FILE)
    run(conn, f"mkdir -p {shlex.quote(layout.base)} && chmod 700 {shlex.quote(layout.base)}")
    put_text(conn, services.env_file_text(services.environment(layout, index_url)), env_file, "600")
    have = output(conn, f"test -x {shlex.quote(layout.venv)}/bin/flower-superlink && echo ok; "
                        f"cat {shlex.quote(marker)} 2>/dev/null")
    if have.partition("\n")[0] == "ok" and have.partition("\n")[2] == want:
        return False
    if not succeeds(conn, f"test -x {shlex.quote(layout.venv)}/bin/pip"):  # e.g. made by the user data already
        ensure_venv_support(conn, name or conn.host, venv_probe)
    packages = " ".join(shlex.quote(p) for p in [f"flwr=={version}", *extra])
    # one install at a time into the venv: one an interrupted start left running there is waited for
    run(conn, plan.one_at_a_time(
        f"{plan.venv_command(layout.venv)} && set -a && . {shlex.quote(env_file)} && set +a && "
        f"{shlex.quote(layout.venv)}/bin/pip install --disable-pip-version-check --no-compile -q -- {packages}",
        layout.path(plan.INSTALL_LOCK), INSTALL_TIMEOUT), timeout=2 * INSTALL_TIMEOUT)
    put_text(conn, want, marker, "600")
    return True


def first_boot(conn, layout: Layout, timeout: int = APT_TIMEOUT) -> str | None:
    """Wait until the VM's user data has run; None when there is nothing to fall back from, else why start
    installs Flower over SSH. After a failed user data its marker is not trusted (removed: the SSH bootstrap
    checks and finishes the install); a note that this was done keeps later starts from doing it again."""
    from flwrazure.plan import userdata

    note = layout.path("userdata-failed")
    if succeeds(conn, f"test -f {shlex.quote(note)}"):
        return None
    result = conn.run(userdata.wait_command(timeout), hide=True, warn=True, in_stream=False, timeout=timeout + 60)
    marker = layout.path("installed.json")
    found = output(conn, f"test -f {userdata.SCRIPT} && echo script; test -f {shlex.quote(marker)} && echo marker")
    has_script, has_marker = "script" in found.split(), "marker" in found.split()
    why = userdata.fallback_reason(result.exited, result.stdout, has_script, has_marker, timeout)
    if why and has_script:
        # what the user data made as root before it stopped becomes the admin user's, as it would have at its end
        mine = " ".join(shlex.quote(p) for p in (layout.base, layout.venv))
        run(conn, f"sudo -n chown -R \"$(id -un):\" {mine} 2>/dev/null; mkdir -p {shlex.quote(layout.base)} && "
                  f"rm -f {shlex.quote(marker)} && printf '%s\\n' {shlex.quote(why)} > {shlex.quote(note)}")
    return why
