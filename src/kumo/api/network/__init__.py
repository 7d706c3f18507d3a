"""The Networking API (Neutron v2.0) under /network: one module per resource."""
