"""What the local cloud puts on a VM's disk before its first boot of a bare image (pure: path -> (text, mode)).

Azure hands a new VM its osProfile through a provisioning data source, and cloud-init (or the Linux agent) applies
it during the first boot: hostname, admin user, authorized_keys, sudoers. That agent runs beside sshd, so for a
while sshd answers but refuses the admin user. Meanwhile Ubuntu's apt-daily / unattended-upgrades hold the dpkg
and apt locks for minutes. Both happen on the first boot only. This module renders that behaviour: a seed file with
the osProfile and the user data (osProfile.customData), a provisioning agent that applies both in cloud-init's
order (the supported cloud-config subset: write_files, runcmd, packages; `#!` scripts), a `cloud-init status
[--wait] [--long] [--format json]` command that reports its progress, and a first-boot apt job that holds the
locks for a configurable time."""

from __future__ import annotations

import json
from dataclasses import dataclass

SEED = "/var/lib/cloud/seed/flwrazure/osprofile.json"
AGENT = "/usr/lib/flwrazure/provision"
APT_JOB = "/usr/lib/flwrazure/first-boot-apt"
FIRST_BOOT = "/usr/lib/flwrazure/first-boot"  # hosts without systemd: starts both jobs in the background
DATA = "/var/lib/cloud/data"  # status.json, result.json (cloud-init links /run/cloud-init/*.json here)
READY = f"{DATA}/reported_ready"  # the agent's provisioning signal: the local cloud ends the VM create on it
OUTPUT = "/var/log/cloud-init-output.log"  # the user data's modules' output, as cloud-init's
SCRIPTS = "/var/lib/cloud/instance/scripts"  # runcmd's script and a `#!` user data, run by scripts_user
DONE = "/var/lib/cloud/instance/boot-finished"
APT_DONE = "/var/lib/flwrazure/first-boot-apt.done"
LOCKS = ("/var/lib/apt/lists/lock", "/var/lib/dpkg/lock-frontend", "/var/lib/dpkg/lock",
         "/var/cache/apt/archives/lock")
APT_HOLDER = "unattended-upgr"  # the name apt prints for the lock holder (15 characters of a process name)


@dataclass(frozen=True)
class FirstBoot:
    hostname: str
    user: str
    keys: tuple[str, ...]
    provision_lag: float  # seconds between boot and the admin user existing
    apt_seconds: float  # seconds the first-boot apt job holds the locks (0: none)
    private_ip: str
    mirror: str  # http://gateway:port, the region's package mirror (apt under /debian, pip under /simple)
    user_data: str | None = None  # osProfile.customData, base64 as the compute API took it


def parse_user_data(custom_data: str | None) -> dict:
    """What the agent gets of the user data: {"cloud_config": {...}} or {"user_script": text}, with
    "user_data_problem" when cloud-init would not run it (it then warns: a recoverable error)."""
    if not custom_data:
        return {}
    import base64

    text = base64.b64decode(custom_data).decode(errors="replace")
    first = text.split("\n", 1)[0].strip()
    if first.startswith("#!"):
        return {"user_script": text}
    if first != "#cloud-config":
        return {"user_data_problem": f"Unhandled non-multipart (text/x-not-multipart) userdata: '{first[:40]}'"}
    body = text.split("\n", 1)[1] if "\n" in text else ""
    try:
        config = json.loads(body) if body.strip() else {}
    except ValueError:
        try:
            import yaml  # the local cloud's own process: cloud-config is YAML (JSON is the subset flwrazure sends)

            config = yaml.safe_load(body) or {}
        except Exception as exc:
            return {"user_data_problem": f"Failed loading yaml blob: {exc}"}
    if not isinstance(config, dict):
        return {"user_data_problem": "cloud-config is not a mapping"}
    return {"cloud_config": config}


_AGENT = """#!/usr/bin/python3
\"\"\"flwrazure local cloud: the provisioning agent in cloud-init's place. On the first boot it applies the VM's
osProfile (users, keys, sudoers: cloud-init's init stage, after which it signals `ready` and the VM create ends),
then the user data's cloud-config in cloud-init's module order: write_files (init stage), runcmd (config stage:
its script written), packages (final stage, waiting for apt's lock as cloud-init does), deferred write_files,
the runcmd script (scripts_user). Module output goes to /var/log/cloud-init-output.log; status.json and
result.json record each stage's errors as cloud-init does (`cloud-init status` reads them).\"\"\"
import base64, json, os, pathlib, pwd, subprocess, sys, time

SEED, DONE = pathlib.Path("@SEED@"), pathlib.Path("@DONE@")
DATA, READY = pathlib.Path("@DATA@"), pathlib.Path("@READY@")
OUTPUT, SCRIPTS = pathlib.Path("@OUTPUT@"), pathlib.Path("@SCRIPTS@")
DATASOURCE = "DataSourceAzure [seed=/dev/sr0]"
STAGES = ("init-local", "init", "modules-config", "modules-final")
v1 = {"datasource": None, "stage": None, **{s: {"errors": [], "recoverable_errors": {}, "start": None,
                                                  "finished": None} for s in STAGES}}


def save(name, value):
    DATA.mkdir(parents=True, exist_ok=True)
    tmp = DATA / (".tmp-" + name)
    tmp.write_text(json.dumps(value, indent=1))
    tmp.chmod(0o644)
    os.replace(tmp, DATA / name)


def stage(name):
    if v1["stage"]:
        v1[v1["stage"]]["finished"] = time.time()
    v1["stage"] = name
    if name:
        v1[name]["start"] = time.time()
    save("status.json", {"v1": v1})
    log(f"stage {name or 'done'}")


def log(text):
    print(time.strftime("%H:%M:%S"), text, flush=True)
    with OUTPUT.open("a") as out:
        out.write(f"Cloud-init (flwrazure local cloud) {time.strftime('%H:%M:%S')}: {text}\\n")


def failed(module, exc):
    v1[v1["stage"]]["errors"].append(f"('{module}', {exc!r})")
    log(f"module {module} failed: {exc}")


def sh(argv, **kw):
    with OUTPUT.open("a") as out:
        return subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, **kw).returncode


def write_files(files, deferred):
    for f in files:
        if bool(f.get("defer")) != deferred:
            continue
        path = pathlib.Path(f["path"])
        path.parent.mkdir(parents=True, exist_ok=True)
        content = f.get("content", "")
        data = base64.b64decode(content) if f.get("encoding") in ("b64", "base64") else content.encode()
        path.write_bytes(data)
        path.chmod(int(str(f.get("permissions", "0644")), 8))
        if f.get("owner"):
            sh(["chown", f["owner"], str(path)], check=True)


def apt(packages, seconds=600):
    # as cloud-init on Debian/Ubuntu: each apt-get waits while another apt/dpkg process holds the locks; a failed
    # update is recorded and the install tried all the same; the last failure is the module's error
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    deadline, errors = time.time() + seconds, []
    for step, error in ((["update"], "Package update failed"),
                        (["install", "-y", *packages], f"Failed to install packages: {packages}")):
        while sh(["apt-get", "-q", "-o", "DPkg::Lock::Timeout=5", *step], env=env) != 0:
            if not lock_held() or time.time() > deadline:
                errors.append(RuntimeError(error))
                log(f"apt-get {step[0]} failed (see above)")
                break
            time.sleep(1)
    if errors:
        raise errors[-1]


def lock_held():
    import fcntl
    for path in @LOCKS@:
        try:
            fd = os.open(path, os.O_RDWR)
        except OSError:
            continue
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.lockf(fd, fcntl.LOCK_UN)
        except OSError:
            return True
        finally:
            os.close(fd)
    return False


seed = json.loads(SEED.read_text())
config, problem = seed.get("cloud_config") or {}, seed.get("user_data_problem")
stage("init-local")
v1["datasource"] = DATASOURCE
if DONE.exists():  # a later boot: per-instance modules do not run again
    for name in STAGES[1:]:
        stage(name)
    stage(None)
    save("result.json", {"v1": {"datasource": DATASOURCE, "errors": []}})
    sys.exit(0)
stage("init")
log("waiting for the provisioning data")
time.sleep(float(seed["provision_lag"]))
try:
    write_files(config.get("write_files") or [], deferred=False)
except Exception as exc:
    failed("write_files", exc)
user = seed["user"]
if subprocess.run(["id", user], capture_output=True).returncode != 0:
    subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", "--groups", "adm,sudo", "--comment",
                    "Azure admin user", user], check=True)
    subprocess.run(["usermod", "--password", "*", user], check=True)  # keys only, not locked
home = pathlib.Path(pwd.getpwnam(user).pw_dir)
ssh = home / ".ssh"
ssh.mkdir(mode=0o700, exist_ok=True)
keys = ssh / "authorized_keys"
keys.write_text("".join(k.strip() + "\\n" for k in seed["keys"]))
keys.chmod(0o600)
subprocess.run(["chown", "-R", f"{user}:{user}", str(ssh)], check=True)
sudoers = pathlib.Path("/etc/sudoers.d/90-cloud-init-users")
sudoers.write_text(f"# Created by cloud-init (flwrazure local cloud)\\n{user} ALL=(ALL) NOPASSWD:ALL\\n")
sudoers.chmod(0o440)
if problem:
    v1["init"]["recoverable_errors"].setdefault("WARNING", []).append(problem)
READY.write_text(time.strftime("%Y-%m-%dT%H:%M:%S\\n"))  # the provisioning signal: the VM create completes
log("reported ready to the platform")
stage("modules-config")
runcmd = config.get("runcmd") or []
if runcmd:
    SCRIPTS.mkdir(parents=True, exist_ok=True)
    import shlex
    lines = [c if isinstance(c, str) else " ".join(shlex.quote(str(a)) for a in c) for c in runcmd]
    (SCRIPTS / "runcmd").write_text("#!/bin/sh\\n" + "\\n".join(lines) + "\\n")
    (SCRIPTS / "runcmd").chmod(0o700)
stage("modules-final")
if config.get("packages"):
    try:
        apt([str(p) for p in config["packages"]])
    except Exception as exc:
        failed("package_update_upgrade_install", exc)
try:
    write_files(config.get("write_files") or [], deferred=True)
except Exception as exc:
    failed("write_files_deferred", exc)
scripts = [SCRIPTS / "runcmd"] if runcmd else []
if seed.get("user_script"):
    SCRIPTS.mkdir(parents=True, exist_ok=True)
    (SCRIPTS / "part-001").write_text(seed["user_script"])
    (SCRIPTS / "part-001").chmod(0o700)
    scripts.append(SCRIPTS / "part-001")
bad = [p.name for p in scripts if sh([str(p)]) != 0]
if bad:
    failed("scripts_user", RuntimeError(f"Runparts: {len(bad)} failures ({','.join(bad)}) in {len(scripts)} "
                                        "attempted commands"))
stage(None)
errors = [e for s in STAGES for e in v1[s]["errors"]]
save("result.json", {"v1": {"datasource": DATASOURCE, "errors": errors}})
DONE.parent.mkdir(parents=True, exist_ok=True)
DONE.write_text(time.strftime("%Y-%m-%dT%H:%M:%S\\n"))
log("finished" + (f" with {len(errors)} error(s)" if errors else ""))
"""

_STATUS_CMD = """#!/usr/bin/python3
\"\"\"cloud-init (flwrazure local cloud emulation): only `cloud-init status [--wait] [--long] [--format json]`,
from the agent's status.json and result.json, with cloud-init's keys and exit codes (0 done, 1 error, 2 done
with recoverable errors).\"\"\"
import json, pathlib, sys, time

DATA = pathlib.Path("@DATA@")
args = sys.argv[1:]
if not args or args[0] != "status":
    print("usage: cloud-init status [--wait] [--long] [--format json] (the local cloud emulates status only)",
          file=sys.stderr)
    sys.exit(2)
fmt = args[args.index("--format") + 1] if "--format" in args and args.index("--format") + 1 < len(args) else "tabular"


def load(name):
    try:
        return json.loads((DATA / name).read_text())["v1"]
    except (OSError, ValueError, KeyError):
        return None


def details():
    v1, result = load("status.json"), load("result.json")
    running = "not started" if v1 is None else "running" if result is None else "done"
    v1 = v1 or {}
    errors, recoverable = [], {}
    for key, stage in sorted(v1.items()):
        if isinstance(stage, dict):
            errors += stage.get("errors") or []
            for kind, items in (stage.get("recoverable_errors") or {}).items():
                recoverable.setdefault(kind, []).extend(items)
    if errors:
        status, extended = "error", f"error - {running}"
    elif recoverable and running in ("done", "running"):
        status, extended = running, f"degraded {running}"
    else:
        status, extended = running, running
    stamps = [s.get(k) or 0 for s in v1.values() if isinstance(s, dict) for k in ("start", "finished")]
    out = {"boot_status_code": "enabled-by-generator", "datasource": "azure" if v1.get("datasource") else "",
           "detail": v1.get("datasource") or (f"Running in stage: {v1['stage']}" if v1.get("stage") else
                                               "Cloud-init enabled by systemd cloud-init-generator"),
           "errors": errors, "extended_status": extended, "recoverable_errors": recoverable, "status": status,
           "last_update": time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(max(stamps))) if any(stamps)
           else ""}
    out.update({k: v for k, v in v1.items() if k != "datasource"})
    return out, running


info, running = details()
if "--wait" in args:
    while running in ("not started", "running"):
        if fmt == "tabular":
            print(".", end="", flush=True)
        time.sleep(0.25)
        info, running = details()
if fmt == "json":
    print(json.dumps(info, indent=2, sort_keys=True, separators=(",", ": ")))
else:
    print(("\\n" if "--wait" in args else "") + f"status: {info['status']}")
    if "--long" in args or "-l" in args:
        errs = "".join(f"\\n\\t- {e}" for e in info["errors"]) or " []"
        rec = "".join(f"\\n{k}:" + "".join(f"\\n\\t- {i}" for i in v) for k, v in info["recoverable_errors"].items()) \\
            or " {}"
        last = f"last_update: {info['last_update']}\\n" if info["last_update"] else ""
        print(f"extended_status: {info['extended_status']}\\nboot_status_code: {info['boot_status_code']}\\n"
              f"{last}detail: {info['detail']}\\nerrors:{errs}\\nrecoverable_errors:{rec}")
sys.exit(1 if info["status"] == "error" else 2 if info["recoverable_errors"] else 0)
"""

_APT_JOB = '''#!/usr/bin/python3
"""flwrazure local cloud: first-boot apt activity (apt-daily + unattended-upgrades on a fresh Ubuntu VM), holding
apt's and dpkg's locks for a while; apt names this process as the holder."""
import fcntl, json, os, pathlib, time

done = pathlib.Path("@APT_DONE@")
if done.exists():
    raise SystemExit(0)
done.parent.mkdir(parents=True, exist_ok=True)
done.write_text("")
seconds = float(json.loads(pathlib.Path("@SEED@").read_text())["apt_seconds"])
pathlib.Path("/proc/self/comm").write_text("@HOLDER@")
held = []
for path in @LOCKS@:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o640)
    fcntl.lockf(fd, fcntl.LOCK_EX)
    held.append(fd)
time.sleep(seconds)
'''


def _fill(text: str) -> str:
    for key, value in {"@SEED@": SEED, "@DONE@": DONE, "@DATA@": DATA, "@READY@": READY,
                       "@OUTPUT@": OUTPUT, "@SCRIPTS@": SCRIPTS, "@APT_DONE@": APT_DONE,
                       "@HOLDER@": APT_HOLDER, "@LOCKS@": repr(list(LOCKS))}.items():
        text = text.replace(key, value)
    return text


def package_indexes(mirror: str) -> dict[str, tuple[str, int]]:
    """pip's and uv's system configuration pointing at the region's mirror: what a VM on Azure gets by default
    (the public index) is what a local-cloud VM gets here, for every pip and every `uv` (Flower installs apps'
    dependencies at run time with `uv sync`, which reads uv's configuration, not pip's)."""
    host = mirror.split("//", 1)[1].split("/", 1)[0].split(":")[0]
    return {"/etc/pip.conf": (f"[global]\nindex-url = {mirror}/simple/\ntrusted-host = {host}\n", 0o644),
            "/etc/uv/uv.toml": (f'[[index]]\nurl = "{mirror}/simple/"\ndefault = true\n', 0o644)}


def files(fb: FirstBoot, systemd: bool) -> dict[str, tuple[str, int]]:
    """Every file the first boot needs, relative to the VM's root."""
    seed = {"hostname": fb.hostname, "user": fb.user, "keys": list(fb.keys), "provision_lag": fb.provision_lag,
            "apt_seconds": fb.apt_seconds, **parse_user_data(fb.user_data)}
    out = {
        SEED: (json.dumps(seed, indent=2) + "\n", 0o600),
        AGENT: (_fill(_AGENT), 0o755),
        "/usr/bin/cloud-init": (_fill(_STATUS_CMD), 0o755),
        APT_JOB: (_fill(_APT_JOB), 0o755),
        "/etc/hostname": (fb.hostname + "\n", 0o644),
        "/etc/hosts": (f"127.0.0.1 localhost\n127.0.1.1 {fb.hostname}\n{fb.private_ip} {fb.hostname}\n", 0o644),
        "/etc/ssh/sshd_config.d/50-cloud-init.conf": ("PasswordAuthentication no\n", 0o644),
        "/etc/apt/sources.list": (f"deb [trusted=yes] {fb.mirror}/debian ./\n", 0o644),
        **package_indexes(fb.mirror),
    }
    if systemd:
        out["/etc/systemd/system/cloud-init.service"] = (
            "[Unit]\nDescription=Cloud-init emulation of the flwrazure local cloud: the osProfile and user data\n"
            "After=local-fs.target\n\n[Service]\nType=simple\nRemainAfterExit=yes\nTimeoutStartSec=0\n"
            f"ExecStart={AGENT}\nStandardOutput=append:/var/log/cloud-init.log\n"
            "StandardError=append:/var/log/cloud-init.log\n\n[Install]\nWantedBy=multi-user.target\n", 0o644)
        if fb.apt_seconds > 0:
            out["/etc/systemd/system/apt-first-boot.service"] = (
                "[Unit]\nDescription=Daily apt activities on the first boot (flwrazure local cloud)\n"
                f"ConditionPathExists=!{APT_DONE}\n\n[Service]\nType=simple\nExecStart={APT_JOB}\n\n"
                "[Install]\nWantedBy=multi-user.target\n", 0o644)
    else:
        jobs = [f"{AGENT} >>/var/log/cloud-init.log 2>&1 &"]
        if fb.apt_seconds > 0:
            jobs.insert(0, f"{APT_JOB} >/var/log/first-boot-apt.log 2>&1 &")
        out[FIRST_BOOT] = ("#!/bin/sh\n# hosts without systemd: the first-boot jobs, started by the VM's init\n"
                           + "\n".join(jobs) + "\n", 0o755)
    return out


def enabled_units(fb: FirstBoot) -> list[str]:
    """Units to link into multi-user.target.wants (systemd hosts)."""
    return ["cloud-init.service"] + (["apt-first-boot.service"] if fb.apt_seconds > 0 else [])
