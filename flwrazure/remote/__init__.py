"""The only code that imports Fabric: SSH to the VMs, bootstrap, services."""
