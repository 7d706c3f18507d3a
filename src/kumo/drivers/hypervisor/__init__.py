"""Hypervisor drivers: one small interface (base.py), a registry, and the implementations."""

from kumo.drivers.hypervisor.base import (
    DiskSpec,
    GuestSpec,
    GuestState,
    HypervisorDriver,
    HypervisorError,
    NicSpec,
    PowerState,
)
from kumo.drivers.hypervisor.registry import available, create

__all__ = [
    "DiskSpec",
    "GuestSpec",
    "GuestState",
    "HypervisorDriver",
    "HypervisorError",
    "NicSpec",
    "PowerState",
    "available",
    "create",
]
