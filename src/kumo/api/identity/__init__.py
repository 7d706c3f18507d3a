"""Identity API (Keystone v3 shapes), served under /identity."""
