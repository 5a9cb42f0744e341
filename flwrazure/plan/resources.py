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


def vnet(location: str, tags: dict, address_space: str, subnet_name: str, subnet_prefix: str,
         nat_gateway_id: str | None = None) -> dict:
    return {"location": location, "tags": tags, "properties": {
        "addressSpace": {"addressPrefixes": [address_space]},
        "subnets": [{"name": subnet_name, **subnet(subnet_prefix, nat_gateway_id)}]}}


def subnet(prefix: str, nat_gateway_id: str | None = None) -> dict:
    """The cluster's subnet. With a NAT gateway (--private-clients) it is private, as Azure makes new subnets from
    API version 2025-07-01 on (default outbound access retired): `defaultOutboundAccess: false`, so a VM without a
    public IP goes out through the NAT gateway only, and said explicitly because flwrazure writes with an older API
    version, where leaving it out would mean Azure's implicit outbound address."""
    props: dict = {"addressPrefix": prefix}
    if nat_gateway_id:
        props.update({"natGateway": {"id": nat_gateway_id}, "defaultOutboundAccess": False})
    return {"properties": props}


def subnet_matches(found: dict | None, nat_gateway_id: str | None) -> bool:
    """Whether an existing subnet (REST JSON) already has what subnet() gives it for outbound traffic: with a NAT
    gateway, that gateway associated and default outbound access off (nothing is written then). The default layout
    asks nothing of it."""
    if nat_gateway_id is None:
        return True
    props = (found or {}).get("properties") or {}
    nat = ((props.get("natGateway") or {}).get("id") or "").lower()
    return nat == nat_gateway_id.lower() and props.get("defaultOutboundAccess") is False


def nat_gateway(location: str, tags: dict, public_ip_id: str) -> dict:
    """A Standard NAT gateway with one Standard static public IP: the private client VMs' outbound address. Its idle
    timeout for outbound flows (Azure's default 4 minutes, at most 120) is the public IPs' 30, so a quiet SuperNode
    connection or a slow download is not cut sooner than in the default layout."""
    return {"location": location, "tags": tags, "sku": {"name": "Standard"}, "properties": {
        "idleTimeoutInMinutes": IDLE_TIMEOUT_MINUTES, "publicIpAddresses": [{"id": public_ip_id}]}}


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


def nic(location: str, tags: dict, subnet_id: str, public_ip_id: str | None, nsg_id: str) -> dict:
    """public_ip_id None: a private client VM's NIC (--private-clients), with no public address at all."""
    config: dict = {"subnet": {"id": subnet_id}, "privateIPAllocationMethod": "Dynamic"}
    if public_ip_id:
        config["publicIPAddress"] = {"id": public_ip_id, "properties": {"deleteOption": "Delete"}}
    return {"location": location, "tags": tags, "properties": {
        "networkSecurityGroup": {"id": nsg_id},
        "ipConfigurations": [{"name": "ipconfig1", "properties": config}]}}


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
