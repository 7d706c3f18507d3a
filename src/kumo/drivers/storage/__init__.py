"""Storage drivers: the image file store and qemu-img inspection (volumes come later)."""
