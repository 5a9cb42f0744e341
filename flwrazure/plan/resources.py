"""The ARM request bodies of a cluster's resources (REST shape, as the SDK sends dicts)."""

from __future__ import annotations

IMAGE = {"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server", "version": "latest"}  # Gen2 x64
IMAGE_GEN1 = {**IMAGE, "sku": "server-gen1"}
IMAGE_ARM64 = {**IMAGE, "sku": "server-arm64"}  # Gen2


def machine_for(capabilities: dict[str, str]) -> tuple[dict, str] | None:
    """The Ubuntu 24.04 image and OS disk type a VM size can use, from its resource-SKU capabilities (string
    values, as Azure lists them): the Gen2 x64 image unless the size boots only Gen1 (then the Gen1 image) or is
    Arm64 (the Arm64 image, Gen2); a Premium SSD where the size has premium storage, else a Standard SSD.
    None when no such image fits (an Arm64 size without Gen2, an architecture Ubuntu is not published for)."""
    gens = {g.strip().upper() for g in capabilities.get("HyperVGenerations", "V1,V2").split(",")}
    arch = capabilities.get("CpuArchitectureType", "x64").lower()
    if arch == "arm64":
        image = IMAGE_ARM64 if "V2" in gens else None
    elif arch == "x64":
        image = IMAGE if "V2" in gens else IMAGE_GEN1 if "V1" in gens else None
    else:
        image = None
    if image is None:
        return None
    premium = capabilities.get("PremiumIO", "True").lower() == "true"
    return dict(image), "Premium_LRS" if premium else "StandardSSD_LRS"


def resource_id(sub: str, rg: str, arm_type: str, name: str) -> str:
    return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/{arm_type}/{name}"


def resource_group(location: str, tags: dict) -> dict:
    return {"location": location, "tags": tags}


def vnet(location: str, tags: dict, address_space: str, subnet_name: str, subnet_prefix: str) -> dict:
    return {"location": location, "tags": tags, "properties": {
        "addressSpace": {"addressPrefixes": [address_space]},
        "subnets": [{"name": subnet_name, "properties": {"addressPrefix": subnet_prefix}}]}}


def nsg(location: str, tags: dict, rules: dict[str, dict]) -> dict:
    return {"location": location, "tags": tags, "properties": {
        "securityRules": [{"name": name, **body} for name, body in rules.items()]}}


# Azure drops a TCP flow through a public IP after this many idle minutes (default 4, at most 30): the longest,
# so a quiet SSH session or a SuperNode between runs keeps its connection
IDLE_TIMEOUT_MINUTES = 30


def public_ip(location: str, tags: dict) -> dict:
    # Standard + Static (Basic is retired); deleted together with the VM that uses it
    return {"location": location, "tags": tags, "sku": {"name": "Standard", "tier": "Regional"},
            "properties": {"publicIPAllocationMethod": "Static", "publicIPAddressVersion": "IPv4",
                           "idleTimeoutInMinutes": IDLE_TIMEOUT_MINUTES, "deleteOption": "Delete"}}


def nic(location: str, tags: dict, subnet_id: str, public_ip_id: str, nsg_id: str) -> dict:
    return {"location": location, "tags": tags, "properties": {
        "networkSecurityGroup": {"id": nsg_id},
        "ipConfigurations": [{"name": "ipconfig1", "properties": {
            "subnet": {"id": subnet_id}, "privateIPAllocationMethod": "Dynamic",
            "publicIPAddress": {"id": public_ip_id, "properties": {"deleteOption": "Delete"}}}}]}}


def vm(location: str, tags: dict, size: str, computer_name: str, admin_user: str, public_key: str, nic_id: str,
       os_disk: str, image: dict | None = None, disk_type: str = "Premium_LRS", custom_data: str | None = None,
       spot: dict | None = None) -> dict:
    """custom_data: base64 cloud-init user data (plan.userdata), run by the VM on its first boot; spot: the Spot
    fields (plan.spot.vm_fields)."""
    body = {"location": location, "tags": tags, "properties": {
        "hardwareProfile": {"vmSize": size},
        "storageProfile": {"imageReference": dict(image or IMAGE), "osDisk": {
            "name": os_disk, "createOption": "FromImage", "caching": "ReadWrite", "deleteOption": "Delete",
            "managedDisk": {"storageAccountType": disk_type}}},
        "osProfile": {"computerName": computer_name, "adminUsername": admin_user, "linuxConfiguration": {
            "disablePasswordAuthentication": True,
            "ssh": {"publicKeys": [{"path": f"/home/{admin_user}/.ssh/authorized_keys", "keyData": public_key}]}}},
        "networkProfile": {"networkInterfaces": [{"id": nic_id, "properties": {"primary": True,
                                                                               "deleteOption": "Delete"}}]}}}
    if custom_data:
        body["properties"]["osProfile"]["customData"] = custom_data
    body["properties"].update(spot or {})
    return body
