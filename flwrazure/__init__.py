"""flwrazure: Flower federations on Azure VMs, or on the embedded local cloud."""

__version__ = "0.1.0"
