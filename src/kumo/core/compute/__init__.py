"""Compute (Nova v2.1 semantics): flavors, key pairs, servers and their lifecycle."""
