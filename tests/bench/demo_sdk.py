"""Part of `make demo`: the real Azure SDK creates and deletes a resource group in the running local cloud,
using only what `flwrazure local status --json` prints (exactly how the product will reach it)."""

from __future__ import annotations

import json
import subprocess
import sys

from azure.identity import ClientSecretCredential
from azure.mgmt.resource.resources import ResourceManagementClient


def main() -> None:
    info = json.loads(subprocess.run([sys.executable, "-m", "flwrazure", "local", "status", "--json"],
                                     capture_output=True, text=True, check=True).stdout)
    cred = ClientSecretCredential(info["tenant_id"], info["client_id"], info["client_secret"],
                                  authority=info["endpoint"], disable_instance_discovery=True,
                                  connection_verify=info["ca_bundle"])
    client = ResourceManagementClient(cred, info["subscription_id"], base_url=info["endpoint"],
                                      connection_verify=info["ca_bundle"], polling_interval=0.2)
    group = client.resource_groups.create_or_update("flwrazure-demo", {"location": "eastus"})
    print(f"Azure SDK created resource group {group.name} in {group.location} on the local cloud")
    client.resource_groups.begin_delete("flwrazure-demo").result()
    print("...and deleted it. Cluster commands (create-cluster, open-ports, start, teardown) come next.")


if __name__ == "__main__":
    main()
