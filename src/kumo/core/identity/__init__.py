"""Identity (Keystone v3 semantics): who is calling, what they may do, and their tokens."""
