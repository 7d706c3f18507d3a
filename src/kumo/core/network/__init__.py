"""Networking domain: networks, subnets, IPAM, ports, security groups, routers, floating IPs."""
