"""The flwr CLI that flwrazure runs on the server VM against its own SuperLink over loopback (to register
SuperNode keys and list the nodes online): its connection file and command arguments for each Flower version."""

from __future__ import annotations

import shlex

from flwrazure.plan import versions

NAME = "admin"
PLACEHOLDER = "flwrazure_admin_app.py"  # before 1.26: the module the admin app's components name


def _trust(ca_path: str | None) -> str:
    return f'root-certificates = "{ca_path}"' if ca_path else "insecure = true"


def files(version: str, control_port: int, ca_path: str | None) -> dict[str, str]:
    """File name (inside the admin directory) -> text."""
    address = f"127.0.0.1:{control_port}"
    if versions.config_toml(version):
        return {"config.toml": f'[superlink]\ndefault = "{NAME}"\n\n[superlink.{NAME}]\naddress = "{address}"\n'
                               f"{_trust(ca_path)}\n"}
    # before 1.26 a connection lives in a Flower app's pyproject. The CLI validates the app's fields; 1.23's
    # `supernode` commands also look for the components' module in the app's folder (found by name, its source
    # parsed for the attribute, never imported), so the folder holds a module that names `app` and nothing else
    return {PLACEHOLDER: "app = None  # the admin connection's app: flwr reads this file, never runs it\n",
            "pyproject.toml": (
        '[project]\nname = "flwrazure-admin"\nversion = "1.0.0"\n\n'
        '[tool.flwr.app]\npublisher = "flwrazure"\n\n'
        f'[tool.flwr.app.components]\nserverapp = "{PLACEHOLDER[:-3]}:app"\nclientapp = "{PLACEHOLDER[:-3]}:app"\n\n'
        f'[tool.flwr.federations]\ndefault = "{NAME}"\n\n'
        f'[tool.flwr.federations.{NAME}]\naddress = "{address}"\n{_trust(ca_path)}\n')}


def target(version: str, admin_dir: str) -> str:
    """What follows `flwr supernode <command> ...`: the connection name, preceded by the app dir before 1.26."""
    return NAME if versions.config_toml(version) else f"{admin_dir} {NAME}"


PARALLEL = 4  # flwr CLI processes at once on the server VM: ~80 MB and a CPU-second each; more do not go faster

# One Python process for many flwr CLI calls. Starting the flwr CLI costs 1.3-1.6 CPU-seconds (its imports), its
# call over loopback milliseconds: registering 10 SuperNode keys one process each kept a D2s_v3's two vCPUs busy
# for ~7 s after the SuperLink was healthy, and each poll of `flwr supernode list` while SuperNodes connected
# paid it again. The script runs the venv's `flwr` entry point (the console script's own target, whatever the
# release) once per call, in-process.
#   each [--until PROBE [--unless CHECK] [--wait SECONDS]] NAME... -- ARGS: ARGS once per NAME (every "@" in ARGS
#     replaced by it), each call's output after a line "@@NAME" (the sections bounded() output has). With --until,
#     first the shell command PROBE every POLL s until it prints 200 (the SuperLink healthy: its CLI imports
#     meanwhile, while the SuperLink boots), then a line "@@healthy <seconds since the script started>" (when
#     the imports took longer, that is when the probe first ran); or "@@unhealthy" and no call
#     when SECONDS (120) pass or CHECK (run every second) prints 2 or more (the service's restarts: a crash loop);
#   online N SECONDS -- ARGS: ARGS (a `supernode list ... --format json`) every POLL s until its JSON lists N nodes
#     online or SECONDS pass, then prints the last answer; exit 3 when a call's output could not be read here at
#     all (then the caller polls the CLI the plain way).
BATCH = "batch.py"
POLL = 0.25
NOT_CAPTURED = 3
BATCH_SCRIPT = r'''import time
began = time.monotonic()  # "@@healthy" counts from here: the imports below are part of the wait
import importlib.metadata, io, json, subprocess, sys
sys.path.pop(0)  # the script's folder, the admin directory: as for the console script, not a place for modules
flwr = next(e for e in importlib.metadata.entry_points(group="console_scripts") if e.name == "flwr").load()


def call(args):
    saved = sys.stdout, sys.stderr  # the CLI redirects them for --format json; each call starts as the first
    try:
        flwr(args, prog_name="flwr", standalone_mode=False)
    except SystemExit:
        pass
    except Exception as exc:
        print(json.dumps({"success": False, "error-message": f"{type(exc).__name__}: {exc}"}), file=sys.__stdout__)
    finally:
        sys.stdout, sys.stderr = saved
        sys.__stdout__.flush()


def captured(args):
    # the CLI writes its JSON to sys.__stdout__, past its own redirection of sys.stdout
    out, saved = io.StringIO(), (sys.stdout, sys.__stdout__, sys.stderr)
    sys.stdout = sys.__stdout__ = sys.stderr = out
    try:
        call(args)
    finally:
        sys.stdout, sys.__stdout__, sys.stderr = saved
    return out.getvalue()


def shell(command):
    return subprocess.run(command, shell=True, capture_output=True, text=True).stdout.strip()


split = sys.argv.index("--")
mode, given, args = sys.argv[1], sys.argv[2:split], sys.argv[split + 1:]
opts = {}
while given and given[0].startswith("--"):
    opts[given[0]], given = given[1], given[2:]
if "--until" in opts:
    checked = time.monotonic()
    while shell(opts["--until"]) != "200":
        now = time.monotonic()
        if now - began > float(opts.get("--wait", 120)):
            given = []
        elif "--unless" in opts and now - checked >= 1:
            checked = now
            restarts = shell(opts["--unless"])
            if restarts.isdigit() and int(restarts) >= 2:
                given = []
        if not given:
            print("@@unhealthy", file=sys.__stdout__, flush=True)
            sys.exit(0)
        time.sleep(__POLL__)
    print(f"@@healthy {time.monotonic() - began:.2f}", file=sys.__stdout__, flush=True)
if mode == "each":
    for name in given:
        print(f"@@{name}", file=sys.__stdout__, flush=True)
        call([a.replace("@", name) for a in args])
else:
    want, end = int(given[0]), time.monotonic() + float(given[1])
    while True:
        text = captured(args)
        if not text.strip():
            sys.exit(__NOT_CAPTURED__)
        try:
            nodes = json.loads(text[text.index("{"):]).get("nodes") or []
        except ValueError:
            nodes = []
        if sum(1 for n in nodes if n.get("status") == "online") >= want or time.monotonic() > end:
            print(text, file=sys.__stdout__, flush=True)
            break
        time.sleep(__POLL__)
'''.replace("__NOT_CAPTURED__", str(NOT_CAPTURED)).replace("__POLL__", str(POLL))


def _names(items: list[str]) -> None:
    for item in items:
        if not item or any(c in item for c in " \t\n'\"\\$`;&|<>@"):
            raise ValueError(f"not a plain name: {item!r}")


def batch_each(python: str, script: str, items: list[str], args: list[str], until: str | None = None,
               unless: str | None = None, wait: float = 120) -> str:
    """A shell command: `python script` running the flwr CLI with `args` once per item, with `until`: once that
    probe prints 200 (see BATCH_SCRIPT)."""
    _names(items)
    first = ""
    if until is not None:
        first = f"--until {shlex.quote(until)} --wait {float(wait):g} "
        first += f"--unless {shlex.quote(unless)} " if unless else ""
    return (f"{python} {shlex.quote(script)} each {first}{' '.join(items)} -- "
            f"{' '.join(shlex.quote(a) for a in args)}")


def batch_online(python: str, script: str, want: int, seconds: float, args: list[str]) -> str:
    """A shell command polling `flwr <args>` in one process until `want` SuperNodes are online (BATCH_SCRIPT)."""
    return (f"{python} {shlex.quote(script)} online {int(want)} {float(seconds):g} -- "
            f"{' '.join(shlex.quote(a) for a in args)}")


def bounded(items: list[str], command: str, parallel: int = PARALLEL) -> str:
    """A shell command running `command` once per item (each `@` replaced by the item), at most `parallel` at a
    time, returning when all are done. Items are names (VM names, node ids): no spaces or quotes."""
    _names(items)
    listed = " ".join(shlex.quote(i) for i in items)
    return f"printf '%s\\n' {listed} | xargs -P {max(1, int(parallel))} -I @ sh -c {shlex.quote(command)}"
