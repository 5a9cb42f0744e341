"""The local cloud: an HTTPS emulator of Azure Resource Manager (and, later, sandbox VMs).

A product of its own: only `flwrazure local ...` imports this package. Provisioning code reaches it through
its HTTPS endpoint alone, exactly as it reaches Azure.
"""
