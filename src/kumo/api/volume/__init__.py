"""The Block Storage API (Cinder v3) under /volume/v3[/{project_id}]: one module per resource."""
