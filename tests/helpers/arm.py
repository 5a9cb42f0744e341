"""REST-shaped request bodies (the SDK sends dicts as JSON as they are) for the resources tests create."""

from __future__ import annotations

import fcntl
import subprocess
from functools import lru_cache
from pathlib import Path

IMAGE = {"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server", "version": "latest"}


@lru_cache(maxsize=1)
def ssh_public_key() -> str:
    path = Path("/tmp/flwrazure-test-key")
    with open(f"{path}.lock", "w") as lock:  # pytest-xdist's workers may all be first
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not path.exists():
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return (path.with_suffix(".pub")).read_text().strip()


def vnet(prefix: str = "10.0.0.0/16", subnet: str | None = "10.0.0.0/24", location: str = "eastus") -> dict:
    props: dict = {"addressSpace": {"addressPrefixes": [prefix]}}
    if subnet:
        props["subnets"] = [{"name": "default", "properties": {"addressPrefix": subnet}}]
    return {"location": location, "properties": props}


def rule(priority: int, port: str = "22", source: str = "203.0.113.5", access: str = "Allow",
         direction: str = "Inbound") -> dict:
    return {"properties": {"protocol": "Tcp", "access": access, "direction": direction, "priority": priority,
                           "sourceAddressPrefix": source, "sourcePortRange": "*", "destinationAddressPrefix": "*",
                           "destinationPortRange": port}}


def pip(location: str = "eastus", delete_option: str | None = None) -> dict:
    props: dict = {"publicIPAllocationMethod": "Static"}
    if delete_option:
        props["deleteOption"] = delete_option
    return {"location": location, "sku": {"name": "Standard"}, "properties": props}


def nic(subnet_id: str, pip_id: str | None = None, nsg_id: str | None = None, location: str = "eastus") -> dict:
    cfg: dict = {"subnet": {"id": subnet_id}}
    if pip_id:
        cfg["publicIPAddress"] = {"id": pip_id}
    props: dict = {"ipConfigurations": [{"name": "ipconfig1", "properties": cfg}]}
    if nsg_id:
        props["networkSecurityGroup"] = {"id": nsg_id}
    return {"location": location, "properties": props}


def vm(nic_id: str, size: str = "Standard_D2s_v3", location: str = "eastus", user: str = "azureuser",
       key: str | None = None, delete: bool = True, image: dict | None = None, tags: dict | None = None) -> dict:
    option = "Delete" if delete else "Detach"
    body = {"location": location, "properties": {
        "hardwareProfile": {"vmSize": size},
        "storageProfile": {"imageReference": dict(image or IMAGE),
                           "osDisk": {"createOption": "FromImage", "deleteOption": option}},
        "osProfile": {"adminUsername": user, "linuxConfiguration": {
            "disablePasswordAuthentication": True,
            "ssh": {"publicKeys": [{"path": f"/home/{user}/.ssh/authorized_keys",
                                    "keyData": key or ssh_public_key()}]}}},
        "networkProfile": {"networkInterfaces": [{"id": nic_id, "properties": {"deleteOption": option}}]}}}
    if tags:
        body["tags"] = tags
    return body
