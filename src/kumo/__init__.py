"""kumo: an IaaS private cloud."""

__version__ = "0.2.0.dev0"
