"""A stand-in for the Azure CLI's `az account get-access-token`, for AzureCliCredential: it gets a real token from the
local cloud's Entra endpoint (client credentials from server.json), as `az` gets one from Entra ID, takes half a
second like the real CLI's start-up, and appends one line per run to $FAKE_AZ_LOG so tests can count the runs."""

from __future__ import annotations

import datetime as dt
import json
import os
import ssl
import stat
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path


def install(bin_dir: Path, server_json: Path, log: Path) -> Path:
    """Write an executable `az` into bin_dir (put bin_dir first on PATH)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    az = bin_dir / "az"
    az.write_text(f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(Path(__file__).parents[2])!r})\n"
                  "from tests.helpers.fake_az import main\nmain()\n")
    az.chmod(az.stat().st_mode | stat.S_IXUSR)
    os.environ["FAKE_AZ_SERVER_JSON"], os.environ["FAKE_AZ_LOG"] = str(server_json), str(log)
    return az


def main() -> None:
    args = sys.argv[1:]
    with open(os.environ["FAKE_AZ_LOG"], "a") as log:
        log.write(" ".join(args) + "\n")
    if args[:2] != ["account", "get-access-token"]:
        print(f"ERROR: fake az knows only `account get-access-token`, not {args}", file=sys.stderr)
        sys.exit(1)
    resource = args[args.index("--resource") + 1] if "--resource" in args else args[args.index("--scope") + 1]
    scope = resource if resource.endswith("/.default") else resource.rstrip("/") + "/.default"
    time.sleep(0.5)
    info = json.loads(Path(os.environ["FAKE_AZ_SERVER_JSON"]).read_text())
    data = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": info["client_id"],
                                   "client_secret": info["client_secret"], "scope": scope}).encode()
    ctx = ssl.create_default_context(cafile=info["ca_bundle"])
    with urllib.request.urlopen(f"{info['endpoint']}/{info['tenant_id']}/oauth2/v2.0/token", data,
                                context=ctx, timeout=10) as resp:
        token = json.loads(resp.read())
    expires = int(time.time()) + int(token["expires_in"])
    print(json.dumps({"accessToken": token["access_token"], "tokenType": "Bearer",
                      "expiresOn": dt.datetime.fromtimestamp(expires).strftime("%Y-%m-%d %H:%M:%S.%f"),
                      "expires_on": expires, "subscription": info["subscription_id"],
                      "tenant": info["tenant_id"]}))
