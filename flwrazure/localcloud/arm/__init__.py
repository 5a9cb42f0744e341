"""The Azure Resource Manager emulator: routing, resource types, long-running operations, faults."""
