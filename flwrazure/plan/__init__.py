"""Pure planning: from a validated spec to names, resource bodies, port plans and rule sets. No I/O here."""
