"""Storage drivers: the image file store, qemu-img inspection, and the volume backends
(volumes/)."""
