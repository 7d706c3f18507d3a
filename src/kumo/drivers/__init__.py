"""Host-side drivers: hypervisor, (later) network and storage.

Drivers know nothing of kumo.db or kumo.api: the agent hands them plain dataclasses and
reports what they return.
"""
