"""The domain: resources, state machines, policies, quotas. No HTTP, no SQL strings, no
subprocesses; the API layer maps the errors below to each OpenStack service's error shape."""

from kumo.core import recording as _recording  # noqa: F401  installs the flush hook
