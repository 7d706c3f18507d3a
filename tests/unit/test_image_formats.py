"""Image data inspection: a format that differs from disk_format is refused unless the
operator allows it (Glance's require_image_format_match), data naming other files always."""

from __future__ import annotations

import pytest

from kumo.core.errors import BadRequest
from kumo.core.images import formats

RAW = {"format": "raw", "virtual-size": 4096}
QCOW2_WITH_BACKING = {
    "format": "qcow2",
    "virtual-size": 1 << 20,
    "backing-filename": "/etc/shadow",
}


def test_mismatch_refused_by_default() -> None:
    with pytest.raises(BadRequest, match="does not match disk_format 'qcow2'"):
        formats.inspect("qcow2", RAW)
    assert formats.inspect("raw", RAW) == formats.Inspection("raw", 4096)


def test_mismatch_allowed_keeps_no_virtual_size() -> None:
    inspection = formats.inspect("qcow2", RAW, require_match=False)
    assert inspection == formats.Inspection("raw", None)


@pytest.mark.parametrize("require_match", [True, False])
def test_backing_files_refused_either_way(require_match: bool) -> None:
    with pytest.raises(BadRequest, match="backing file"):
        formats.inspect("qcow2", QCOW2_WITH_BACKING, require_match)
    with pytest.raises(BadRequest):
        formats.inspect("raw", QCOW2_WITH_BACKING, require_match)
