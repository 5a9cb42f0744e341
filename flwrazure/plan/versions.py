"""Which Flower version a cluster runs decides its network layout (see shared notes: flower-versions).

gRPC generation (1.21-1.34): Fleet API on 9092, Control API on 9093 (the seed guide's ports).
HTTP generation (>= 1.40): one port, 8000, serves Fleet + Control. 1.35-1.39 moved APIs one by one: refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from flwrazure.errors import UsageError

DEFAULT_VERSION = "1.42.0"
_VERSION = re.compile(r"(\d+)\.(\d+)\.(\d+)")


LOOPBACK = "127.0.0.1"  # where every API that only processes on the same VM use listens
ANY = "0.0.0.0"  # only the SuperLink's Fleet and Control APIs


@dataclass(frozen=True)
class PortPlan:
    generation: str  # "grpc" | "http"
    fleet: int  # what SuperNodes connect to
    control: int  # what the flwr CLI connects to
    supernode_local: int  # each SuperNode's local app API (ClientAppIo / Runtime API), on loopback
    superlink_local: int | None = None  # the SuperLink's ServerAppIo API, on loopback (HTTP: served on `fleet`)

    def inbound(self) -> list[int]:
        return sorted({self.fleet, self.control})


GRPC = PortPlan("grpc", 9092, 9093, 9094, 9091)
HTTP = PortPlan("http", 8000, 8000, 9094)


def parse(version: str) -> tuple[int, int, int]:
    m = _VERSION.fullmatch(version or "")
    if not m:
        raise UsageError(f"--flwr-version {version!r} is not a version: give one like 1.42.0 (major.minor.patch).")
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


def port_plan(version: str) -> PortPlan:
    major, minor, _ = parse(version)
    if (major, minor) < (1, 21) or major != 1:
        raise UsageError(f"--flwr-version {version}: flwrazure supports Flower 1.21 to 1.34 (ports 9092/9093) "
                         "and 1.40 or newer (port 8000).")
    if (1, 35) <= (major, minor) <= (1, 39):
        raise UsageError(f"--flwr-version {version}: Flower 1.35-1.39 moved its APIs to HTTP one at a time and is "
                         "not supported; use 1.34.x (ports 9092/9093) or 1.40+ (port 8000), e.g. 1.42.0.")
    return GRPC if (major, minor) <= (1, 34) else HTTP


def supernode_cli(version: str) -> bool:
    """`flwr supernode register|list` and `--enable-supernode-auth` exist from 1.23 (before: CSV key lists)."""
    return parse(version)[:2] >= (1, 23)


def config_toml(version: str) -> bool:
    """From 1.26 the flwr CLI reads connections from $FLWR_HOME/config.toml; before, from the app's pyproject
    (`[tool.flwr.federations.NAME]`), and its commands take the app directory before the federation name."""
    return parse(version)[:2] >= (1, 26)


# Whether and where an app's dependencies are installed at run time (`uv sync` by the SuperExec that runs the app),
# read from each release's source and --help (docs/flower-versions.md):
NO_INSTALLER = "none"  # 1.21-1.28: no installer at all; an app's dependencies come with `start --extra-pip`
OPT_IN = "opt-in"  # 1.29-1.31: off in SuperLink and SuperNode; `--allow-runtime-dependency-installation` on each
SUPERLINK_ON = "superlink-on"  # 1.32+: on in the SuperLink (`--disable-…` turns it off), off in SuperNodes (`--allow-…`)


def runtime_deps_support(version: str) -> str:
    minor = parse(version)[:2]
    return NO_INSTALLER if minor < (1, 29) else OPT_IN if minor < (1, 32) else SUPERLINK_ON


def same_minor(a: str, b: str) -> bool:
    """flwr CLI, SuperLink and SuperNode must share major.minor (checked by Flower since ~1.32)."""
    return parse(a)[:2] == parse(b)[:2]


def supported(version: str) -> bool:
    try:
        port_plan(version)
    except UsageError:
        return False
    return True


def default_version(installed: str | None) -> str:
    """The locally installed flwr when it is a supported release, else DEFAULT_VERSION."""
    return installed if installed and supported(installed) else DEFAULT_VERSION


def installed_flwr() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("flwr")
    except PackageNotFoundError:
        return None
