"""kumo: an IaaS private cloud."""

__version__ = "0.1.0"
