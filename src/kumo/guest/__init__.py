"""The kumo-tiny test guest: a Debian kernel plus a busybox initramfs that reports what it
sees (config drive, addresses, disks) on its serial console. Used by tests and `kumo up`."""

from kumo.guest.builder import TinyGuest, build_tiny_guest

__all__ = ["TinyGuest", "build_tiny_guest"]
