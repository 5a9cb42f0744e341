"""The only code that imports the Azure SDK: credentials and clients, preflight, provisioning, firewall,
inventory and teardown. Reached lazily from the CLI so `--help` never pays for the SDK."""
