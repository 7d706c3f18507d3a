"""Block storage (Cinder v3): volumes, types, snapshots, attachments, quotas."""
