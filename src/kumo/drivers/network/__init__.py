"""Host network datapath drivers: desired state (spec), names, capabilities, and the
Linux implementation (bridges, taps, VXLAN, dnsmasq, nftables, router namespaces)."""
