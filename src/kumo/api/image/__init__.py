"""Image API (Glance v2) under /image: versions, schemas, images, data, members, tags."""
