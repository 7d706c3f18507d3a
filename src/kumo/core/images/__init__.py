"""The image service's domain (Glance v2): image records, visibility and sharing, JSON-patch
updates, the upload state machine and the safety check of uploaded data.

No HTTP and no file or process handling here: the API streams data to the image store
(kumo.drivers.storage) and hands this package the facts (size, hashes, ``qemu-img info``).
"""
