"""The domain: resources, state machines, policies, quotas. No HTTP, no SQL strings, no
subprocesses; the API layer maps the errors below to each OpenStack service's error shape."""
