"""`flwrazure local …`: the embedded local cloud. The only product code that imports flwrazure.localcloud."""

from __future__ import annotations

import json
from pathlib import Path

import click

from flwrazure.errors import FlwrazureError, UsageError
from flwrazure.workstation import settings


def _existing_file(value: Path | None, flag: str) -> Path | None:
    if value is None:
        return None
    if not value.is_file():
        raise UsageError(f"{flag} {value}: no such file (give the path of a JSON file).")
    try:
        json.loads(value.read_text())
    except ValueError as exc:
        raise UsageError(f"{flag} {value}: not valid JSON ({exc}).") from None
    return value.resolve()


def _hosts_line(info: dict) -> str:
    if info.get("hosts") == "nspawn":
        init = "booting systemd" if info.get("systemd", True) else "without systemd (sshd only)"
        return f"sandbox hosts {init} (SSH to their public IPs from this machine)"
    return f"API only, no hosts to log into ({info.get('hosts_note') or 'started with --hosts none'})"


def _used() -> dict | None:
    """The identity of another home's local cloud that `flwrazure local use` made this home's, or None."""
    path = settings.local_connection_file()
    try:
        conn = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise FlwrazureError(f"{path} cannot be read ({exc}): run `flwrazure local use FILE` again, or "
                             "`flwrazure local use --forget`.") from None
    return conn if isinstance(conn, dict) else None


def _refuse_if_used(what: str) -> None:
    conn = _used()
    if conn is not None:
        raise UsageError(f"This home uses identity {conn.get('identity')!r} of the local cloud at "
                         f"{conn.get('endpoint')} (`flwrazure local use`): {what} from the home that runs it, or run "
                         "`flwrazure local use --forget` first.")


def _current() -> dict | None:
    """What this home's --cloud local reaches when it answers: the identity `local use` chose, else the local
    cloud this home runs."""
    from flwrazure.localcloud import daemon

    conn = _used()
    if conn is not None:
        return conn if daemon.healthy(conn) else None
    return daemon.running(settings.local_cloud_dir())


# the extensions the local cloud knows (flwrazure.localcloud.arm.extensions.KNOWN; not imported here: --help stays fast)
POLICY_EXTENSIONS = ["AzurePolicyforLinux", "MDE.Linux", "AzureMonitorLinuxAgent"]


@click.group()
def local() -> None:
    """An offline Azure on this machine: an HTTPS Azure Resource Manager emulator that the real Azure SDK talks
    to. Try every flwrazure command here before paying for VMs.

    \b
    Examples:
      sudo flwrazure local prepare            # install what its sandbox VMs need (once)
      flwrazure local up                      # start it (prints the endpoint)
      flwrazure local status --json           # endpoint, CA bundle and credentials for scripts
      flwrazure local up --latency 2          # every long-running operation takes 2 s, like a slow cloud
      eval "$(flwrazure local az)"            # then the Azure CLI manages it too: az vm list -d
      flwrazure local up --profile azure --time-scale 0.05   # Azure's durations, 20x faster
      flwrazure local down                    # stop it; its resources are kept for the next `up`
      flwrazure local reset --yes             # forget every resource
    \b
    Other organisations (tenants) in the same local cloud, e.g. a silo:
      flwrazure local identity add hospital-b --json > hospital-b.json
      FLWRAZURE_HOME=~/silo flwrazure local use hospital-b.json
    \b
    Then use it with --cloud local (or FLWRAZURE_CLOUD=local):
      flwrazure up --cloud local --clients 2
    """


@local.command()
@click.option("--port", type=click.IntRange(0, 65535), default=None,
              help="Port on 127.0.0.1 (default 47443; 0 picks a free one).")
@click.option("--latency", type=click.FloatRange(0, 3600), default=0.0, show_default=True,
              help="Seconds each long-running operation (VM create, NIC create, delete…) takes.")
@click.option("--profile", type=click.Choice(["none", "azure"]), default="none", show_default=True,
              help="'azure': each operation takes as long as on Azure (a VM ~75 s, a VNet ~5 s, a group delete "
                   "~78 s) and answers with Azure's Retry-After; 'none': --latency for every operation.")
@click.option("--time-scale", type=click.FloatRange(0.001, 100), default=1.0, show_default=True,
              help="Multiply every duration and Retry-After by this, and refill the throttling buckets 1/F times "
                   "faster (0.05 = Azure's behaviour 20x faster).")
@click.option("--throttling/--no-throttling", default=True, show_default=True,
              help="Meter requests as Azure does (ARM's token buckets per subscription, Compute's per-operation "
                   "limits): 429 with Retry-After past the limits.")
@click.option("--faults", type=click.Path(path_type=Path), default=None,
              help="JSON file of fault rules (throttling, 5xx, failed operations) to inject.")
@click.option("--catalog", type=click.Path(path_type=Path), default=None,
              help="JSON file overriding regions, VM sizes, restrictions and quotas.")
@click.option("--hosts", type=click.Choice(["auto", "nspawn", "none"]), default="auto", show_default=True,
              help="VMs as sandbox hosts booting systemd (nspawn; needs root), or API only (none).")
@click.option("--boot-delay", type=click.FloatRange(0, 600), default=2.0, show_default=True,
              help="Extra seconds before a VM's SSH answers, as on Azure.")
@click.option("--prefetch", multiple=True, metavar="SPEC",
              help="Download wheels (e.g. 'flwr==1.42.0') into the VMs' package mirror now, to work offline later "
                   "(not needed otherwise: the mirror fetches what VMs ask for through this machine's pip).")
@click.option("--no-systemd", is_flag=True,
              help="Sandbox hosts run only sshd, no systemd (as some container images): flwrazure start then "
                   "keeps Flower running with its own restart loop.")
@click.option("--vm-cpu", type=click.FloatRange(0.01, 64), default=None, metavar="CORES",
              help="Cap each VM at this many of this machine's cores (e.g. 0.4), so that, as on Azure, a VM's "
                   "speed does not depend on how many other VMs run.")
@click.option("--image-source", type=click.Choice(["image", "host"]), default="image", show_default=True,
              help="What VMs boot: bare cloud images built once from Debian's packages (like Azure's marketplace "
                   "images), or this machine's own OS (quick experiments; every tool installed here is there).")
@click.option("--provision-lag", type=click.FloatRange(0, 3600), default=8.0, show_default=True,
              metavar="SECONDS", help="On a VM's first boot, how long after boot the provisioning agent creates "
                                      "the admin user (sshd answers earlier and refuses it meanwhile).")
@click.option("--first-boot-apt", type=click.FloatRange(0, 3600), default=40.0, show_default=True,
              metavar="SECONDS", help="On an Ubuntu VM's first boot, how long apt-daily/unattended-upgrades hold "
                                      "the dpkg and apt locks (0: not at all).")
@click.option("--conflicts", is_flag=True,
              help="Refuse concurrent writes to one network resource as Azure's network provider does (429 "
                   "RetryableError for NICs joining a busy subnet, 409 AnotherOperationInProgress for a busy NSG).")
@click.option("--policy-extension", "policy_extensions", multiple=True, type=click.Choice(POLICY_EXTENSIONS),
              help="Put this untagged VM extension on every new VM, as Azure Policy / Defender do (repeatable).")
def up(port: int | None, latency: float, profile: str, time_scale: float, throttling: bool, faults: Path | None,
       catalog: Path | None, hosts: str, boot_delay: float, prefetch: tuple[str, ...], no_systemd: bool,
       vm_cpu: float | None, image_source: str, provision_lag: float, first_boot_apt: float, conflicts: bool,
       policy_extensions: tuple[str, ...]) -> None:
    """Start the local cloud in the background (does nothing if it already runs). The first time, the VM image
    is built (about a minute, once; cached under $FLWRAZURE_HOME/local/images or $FLWRAZURE_IMAGES).

    \b
    Examples:
      flwrazure local up
      flwrazure local up --latency 1 --first-boot-apt 0 --provision-lag 0
      flwrazure local up --image-source host          # VMs boot this machine's OS
    """
    from flwrazure.localcloud import daemon

    _refuse_if_used("start it")
    if hosts != "none" and image_source == "image":
        _build_image(hosts)
    options = ["--latency", str(latency), "--hosts", hosts, "--boot-delay", str(boot_delay),
               "--image-source", image_source, "--provision-lag", str(provision_lag),
               "--first-boot-apt", str(first_boot_apt), "--profile", profile, "--time-scale", str(time_scale)]
    if not throttling:
        options.append("--no-throttling")
    for spec in prefetch:
        options += ["--prefetch", spec]
    if conflicts:
        options.append("--conflicts")
    for name in policy_extensions:
        options += ["--policy-extension", name]
    if no_systemd:
        options.append("--no-systemd")
    if vm_cpu:
        options += ["--vm-cpu", str(vm_cpu)]
    if (f := _existing_file(faults, "--faults")) is not None:
        options += ["--faults", str(f)]
    if (c := _existing_file(catalog, "--catalog")) is not None:
        options += ["--catalog", str(c)]
    info, started = daemon.up(settings.local_cloud_dir(), daemon.DEFAULT_PORT if port is None else port, options,
                              wait=900 if prefetch else 60)
    verb = "started" if started else "already running"
    click.echo(f"Local cloud {verb} at {info['endpoint']} (subscription {info['subscription_id']}).")
    click.echo(f"VMs: {_hosts_line(info)}")
    click.echo("Next: flwrazure up --cloud local --clients 2   (or export FLWRAZURE_CLOUD=local)", err=True)
    if not started and (latency or faults or catalog or conflicts or policy_extensions or profile != "none"
                        or time_scale != 1.0 or not throttling):
        click.echo("Note: options apply when it starts; run `flwrazure local down` first to change them.", err=True)


def _build_image(hosts: str) -> None:
    """Build the VM image in the foreground, with progress, before the server starts (once; then cached)."""
    from flwrazure.localcloud import images
    from flwrazure.localcloud.hosts import nspawn

    folder = images.images_dir(settings.local_cloud_dir())
    if images.cached(folder) or nspawn.available():
        return  # cached, or no sandbox hosts here anyway (the server says why)
    if images.available():
        if hosts == "nspawn":
            raise FlwrazureError(f"--hosts nspawn: {images.available()}")
        return
    try:
        images.ensure(folder, say=lambda line: click.echo(line, err=True))
    except RuntimeError as exc:
        raise FlwrazureError(str(exc)) from None


@local.command()
@click.option("--if-root", is_flag=True,
              help="Install only when run as root; otherwise say what is missing and exit 0 (`make test` uses "
                   "it: without sandbox VMs, their tests are skipped).")
def prepare(if_root: bool) -> None:
    """Install what the local cloud's sandbox VMs need, with apt, as root: openssh-server, openssh-client,
    iptables, iproute2, systemd-container, mmdebstrap. Does nothing when they are all there; when not root,
    prints the command to run.

    \b
    Examples:
      sudo flwrazure local prepare
      flwrazure local prepare --if-root      # in scripts that also run without root
    """
    import os
    import subprocess

    from flwrazure.localcloud import prepare as prep

    decision = prep.decide(prep.present_tools(), os.geteuid() == 0)
    if decision.action == "nothing":
        click.echo(decision.line)
        return
    if decision.action in ("ask", "unsupported"):
        if if_root:
            click.echo(f"Note: {decision.line} Until then, tests that need sandbox VMs are skipped.", err=True)
            return
        raise UsageError(decision.line)
    click.echo(decision.line, err=True)
    for argv in decision.commands:
        proc = subprocess.run(argv, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
                              stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            raise FlwrazureError(f"`{' '.join(argv)}` failed (exit {proc.returncode}, apt's messages above): fix "
                                 "what apt says (package sources, network, disk), then run `flwrazure local "
                                 "prepare` again.")
    still = prep.decide(prep.present_tools(), True).missing
    if still:
        raise FlwrazureError(f"apt installed {' '.join(decision.packages)}, yet {', '.join(still)} is still not "
                             "found: check this machine's PATH and packages.")
    click.echo(f"Installed {' '.join(decision.packages)}. A local cloud already running keeps its API-only VMs: "
               "`flwrazure local down && flwrazure local up` gives it sandbox VMs.")


@local.command()
@click.option("--json", "as_json", is_flag=True, help="Print endpoint, CA bundle and credentials as JSON.")
def status(as_json: bool) -> None:
    """Show whether the local cloud runs, its endpoint and the credentials that reach it.

    \b
    Example:
      flwrazure local status --json
    """
    info, used = _current(), _used()
    if info is None:  # with --json: the error object on stdout (code local.not_running), as every error
        if used is not None:
            raise FlwrazureError(f"The local cloud at {used.get('endpoint')} (identity {used.get('identity')!r}, "
                                 "`flwrazure local use`) does not answer: start it from the home that runs it.",
                                 code="local.not_running")
        raise FlwrazureError("The local cloud is not running: start it with `flwrazure local up`.",
                             code="local.not_running")
    if as_json:
        click.echo(json.dumps({"running": True, **info}, indent=2))
        return
    if used is not None:
        click.echo(f"Local cloud running at {info['endpoint']}, used as identity {info.get('identity')!r} "
                   "(`flwrazure local use`; another home runs it)")
    else:
        click.echo(f"Local cloud running at {info['endpoint']} (pid {info['pid']})")
    click.echo(f"  subscription  {info['subscription_id']}\n  tenant        {info['tenant_id']}")
    click.echo(f"  CA bundle     {info['ca_bundle']}\n  credentials   `flwrazure local status --json`")
    click.echo(f"  VMs           {_hosts_line(info)}")
    click.echo('  Azure CLI     eval "$(flwrazure local az)"   (then e.g. az vm list -d -o table)')
    if info.get("pip_index"):
        click.echo(f"  pip index     {info['pip_index']} (VMs use it by default)")


@local.command()
def az() -> None:
    """Print the shell lines that point the Azure CLI (`az`) at the local cloud, in a config folder of its own
    (your real `az login` is left alone): trust its CA, register it as a cloud, make it active, sign in as its
    service principal, with telemetry and instance discovery off so az sends nothing anywhere else.

    
    Example:
      eval "$(flwrazure local az)"
      az group list -o table; az vm list -d -o table
    """
    from flwrazure.localcloud import azcli

    info = _current()  # the identity `local use` chose, if any: az then sees only its subscription
    if info is None:
        raise FlwrazureError("The local cloud is not running: start it with `flwrazure local up`.")
    config_dir = str(settings.local_cloud_dir() / "az")
    click.echo(azcli.script(info, config_dir, azcli.write_secret(info, config_dir)), nl=False)


@local.command()
def down() -> None:
    """Stop the local cloud (its resources are kept for the next `local up`).

    \b
    Example:
      flwrazure local down
    """
    from flwrazure.localcloud import daemon

    _refuse_if_used("stop it")
    stopped = daemon.down(settings.local_cloud_dir())
    click.echo("Local cloud stopped." if stopped else "The local cloud was not running.")


@local.command()
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
def reset(yes: bool) -> None:
    """Forget every resource of the local cloud (it must be stopped first).

    \b
    Example:
      flwrazure local down && flwrazure local reset --yes
    """
    from flwrazure.localcloud import daemon

    _refuse_if_used("reset it")
    if not yes:
        from flwrazure.cli.cluster import confirm

        confirm("Delete every resource group and resource of the local cloud?")
    daemon.reset(settings.local_cloud_dir())
    click.echo("Local cloud reset: no resources left.")


@local.group()
def identity() -> None:
    """Other organisations in this local cloud: each identity is a tenant of its own (or of --tenant's), a
    subscription and a service principal with a role on that subscription only. A token of one cannot read or
    change another's resources (Azure's InvalidAuthenticationTokenTenant, AuthorizationFailed, SubscriptionNotFound),
    while the VMs of all share the public network. Quotas, throttling and resource groups are per subscription.

    \b
    Examples:
      flwrazure local identity add hospital-b --json > hospital-b.json   # its credentials, for that home
      FLWRAZURE_HOME=~/silo flwrazure local use hospital-b.json          # then that home's --cloud local is it
      flwrazure local identity list
    """


def _principal_info(info: dict, principal) -> dict:
    """An identity as `local status --json` shows the cloud's own: the same keys, its tenant, subscription and
    credentials (no server pid: the file goes to another home)."""
    out = {k: v for k, v in info.items() if k != "pid"}
    out.update(running=True, identity=principal.name, tenant_id=principal.tenant_id,
               subscription_id=principal.subscription_id, client_id=principal.client_id,
               client_secret=principal.client_secret, object_id=principal.object_id)
    return out


def _write_private(path: Path, text: str) -> None:
    """A file only its owner can read, created so before its first byte."""
    import os

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


@identity.command("add")
@click.argument("name")
@click.option("--tenant", "tenant_of", metavar="IDENTITY",
              help="Put it in that identity's tenant ('default': this cloud's own), with a subscription of its own "
                   "(default: a new tenant).")
@click.option("--json", "as_json", is_flag=True,
              help="Print its credentials as JSON (the keys of `local status --json`) for `local use FILE`.")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Write that JSON to this file (readable only by you) instead of printing it.")
def identity_add(name: str, tenant_of: str | None, as_json: bool, output: Path | None) -> None:
    """Create identity NAME (or show it when it exists: adding again is harmless). Its secret is printed only
    with --json or written with -o, as `az ad sp create-for-rbac` does: keep it like a password.

    \b
    Examples:
      flwrazure local identity add hospital-b --json > hospital-b.json
      flwrazure local identity add lab-c -o lab-c.json
      flwrazure local identity add audit --tenant default   # same tenant as this cloud's own, other subscription
    """
    from flwrazure.localcloud import daemon
    from flwrazure.localcloud import identity as ids

    _refuse_if_used("create identities")
    try:
        ids.check_name(name)
        if tenant_of is not None:
            ids.check_name(tenant_of)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    state = settings.local_cloud_dir()
    info = daemon.running(state)
    if info is None:
        raise FlwrazureError("The local cloud is not running: start it with `flwrazure local up`.")
    try:
        principal, created = ids.add(state, ids.load(state), name, tenant_of)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    data = _principal_info(info, principal)
    if output is not None:
        _write_private(output, json.dumps(data, indent=2) + "\n")
    if as_json and output is None:
        click.echo("Note: this JSON holds the identity's client secret: keep it like a password.", err=True)
        click.echo(json.dumps(data, indent=2))
        return
    verb = "Created" if created else "Found"
    click.echo(f"{verb} identity {name} in the local cloud at {info['endpoint']}:")
    click.echo(f"  tenant        {principal.tenant_id}\n  subscription  {principal.subscription_id}")
    click.echo(f"  client id     {principal.client_id}\n  object id     {principal.object_id}")
    if output is not None:
        click.echo(f"Credentials (secret included, mode 0600) in {output}; in that organisation's home: "
                   f"flwrazure local use {output}")
    else:
        click.echo(f"Its credentials: flwrazure local identity add {name} -o {name}.json; in that organisation's "
                   f"home: flwrazure local use {name}.json")


@identity.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print them as JSON (no secrets).")
def identity_list(as_json: bool) -> None:
    """The identities of this home's local cloud: name, tenant, subscription, client id (never a secret).

    \b
    Example:
      flwrazure local identity list
    """
    from flwrazure.localcloud import identity as ids

    _refuse_if_used("list its identities")
    state = settings.local_cloud_dir()
    if not (state / "identity.json").exists():
        raise FlwrazureError("This home has no local cloud yet: start it with `flwrazure local up`.")
    own = ids.default_principal(ids.load(state))
    everyone = [own, *ids.read_added(state).values()]
    if as_json:
        click.echo(json.dumps([p.public() for p in everyone], indent=2))
        return
    click.echo(f"{'NAME':<20} {'TENANT':<37} {'SUBSCRIPTION':<37} CLIENT ID")
    for p in everyone:
        click.echo(f"{p.name:<20} {p.tenant_id:<37} {p.subscription_id:<37} {p.client_id}")


USE_KEYS = ("endpoint", "tenant_id", "subscription_id", "client_id", "client_secret")


def _connection_from(file: Path) -> dict:
    """The identity JSON of `local identity add --json`, checked: one line naming what is wrong otherwise."""
    import re

    try:
        data = json.loads(file.read_text())
    except FileNotFoundError:
        raise UsageError(f"{file}: no such file (give the JSON that `flwrazure local identity add NAME --json` "
                         "printed).") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"{file}: not a JSON file ({exc}); give the JSON that `flwrazure local identity add NAME "
                         "--json` printed.") from None
    if not isinstance(data, dict):
        raise UsageError(f"{file}: not an identity (a JSON object with {', '.join(USE_KEYS)} is expected).")
    missing = [k for k in USE_KEYS if not isinstance(data.get(k), str) or not data[k]]
    if missing:
        raise UsageError(f"{file}: {', '.join(missing)} missing: give the JSON that `flwrazure local identity add "
                         "NAME --json` printed.")
    if not re.fullmatch(r"https://(127\.0\.0\.1|localhost|\[::1\]):\d{1,5}", data["endpoint"]):
        raise UsageError(f"{file}: endpoint {data['endpoint']!r} is not a local cloud's (https://127.0.0.1:PORT).")
    for key in ("tenant_id", "subscription_id", "client_id"):
        if not re.fullmatch(r"[0-9a-fA-F-]{36}", data[key]):
            raise UsageError(f"{file}: {key} {data[key]!r} is not a GUID.")
    pem = data.get("ca_certificate")
    if not isinstance(pem, str) or "-----BEGIN CERTIFICATE-----" not in pem:
        raise UsageError(f"{file}: ca_certificate (the local cloud's CA, PEM) missing: give the JSON that "
                         "`flwrazure local identity add NAME --json` printed.")
    return data


@local.command()
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False), required=False)
@click.option("--forget", is_flag=True, help="Stop using it: this home's --cloud local is its own local cloud again.")
def use(file: Path | None, forget: bool) -> None:
    """Make this home's --cloud local act as an identity of a local cloud that another home runs: FILE is what
    `flwrazure local identity add NAME --json` printed there. Commands here then create and see only that
    identity's subscription; `local az` signs in as it. The CA and credentials are copied into this home.

    \b
    Examples:
      FLWRAZURE_HOME=~/silo flwrazure local use hospital-b.json
      FLWRAZURE_HOME=~/silo flwrazure create-cluster --cloud local --clients 1
      FLWRAZURE_HOME=~/silo flwrazure local use --forget
    """
    from flwrazure.localcloud import daemon

    path = settings.local_connection_file()
    if forget:
        if file is not None:
            raise UsageError("Give either FILE or --forget, not both.")
        existed = path.exists()
        path.unlink(missing_ok=True)
        (settings.local_cloud_dir() / "ca.pem").unlink(missing_ok=True)
        click.echo("This home no longer uses another home's local cloud." if existed else
                   "This home used no other home's local cloud.")
        return
    if file is None:
        raise UsageError("Give the identity's JSON file (from `flwrazure local identity add NAME --json`), or "
                         "--forget.")
    data = _connection_from(file)
    if daemon.running(settings.local_cloud_dir()) is not None:
        raise UsageError("This home runs a local cloud of its own: stop it first (`flwrazure local down`), or use "
                         "another FLWRAZURE_HOME for the other identity.")
    folder = settings.ensure_private_dir(settings.local_cloud_dir())
    ca = folder / "ca.pem"
    trial = folder / "ca.pem.new"  # checked first: a wrong file changes nothing here
    _write_private(trial, data["ca_certificate"])
    try:
        answers = daemon.healthy({**data, "ca_bundle": str(trial)})
        why = daemon.sign_in_error({**data, "ca_bundle": str(trial)}) if answers else None
        if why:
            raise UsageError(f"{file}: the local cloud at {data['endpoint']} refuses these credentials ({why}): "
                             "give the JSON that `flwrazure local identity add NAME --json` printed there.")
        trial.replace(ca)
    finally:
        trial.unlink(missing_ok=True)
    conn = {**{k: v for k, v in data.items() if k not in ("pid", "running")}, "ca_bundle": str(ca)}
    _write_private(path, json.dumps(conn, indent=2) + "\n")
    name = data.get("identity") or "?"
    click.echo(f"This home's --cloud local is now identity {name!r} (tenant {data['tenant_id']}, subscription "
               f"{data['subscription_id']}) of the local cloud at {data['endpoint']}.")
    if not answers:
        click.echo("Note: that local cloud does not answer now; start it from the home that runs it.", err=True)
