"""kumo-tiny's SSH payload: dropbear with the libraries it loads, and the stand-ins for
util-linux commands Tempest runs in the guest, checked the way Tempest reads them."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from kumo.guest.ssh import DROPBEAR, LSBLK, shared_libraries, ssh_payload


def test_without_dropbear_the_guest_has_no_ssh(tmp_path: Path) -> None:
    assert ssh_payload(tmp_path / "no-dropbear") is None


@pytest.mark.skipif(not DROPBEAR.exists(), reason="dropbear-bin is not installed")
def test_payload_carries_dropbear_and_every_library_it_loads() -> None:
    payload = ssh_payload()
    assert payload is not None
    names = {path.name for path in payload.binaries}
    assert "dropbear" in names and "libc.so.6" in names
    assert any(name.startswith("ld-linux") for name in names), names
    assert set(shared_libraries(DROPBEAR)) <= set(payload.binaries)
    files = {name: mode for name, _, mode in payload.files}
    assert files["etc/shadow"] == 0o600 and files["usr/bin/sudo"] == 0o755


@pytest.mark.skipif(not shutil.which("busybox"), reason="busybox is not installed")
def test_lsblk_aligns_the_type_column_as_tempest_expects(tmp_path: Path) -> None:
    script = tmp_path / "lsblk"
    script.write_text(LSBLK)
    out = subprocess.run(
        ["busybox", "sh", str(script)], capture_output=True, text=True, check=True
    ).stdout
    header, *rows = out.splitlines()
    pos = header.find("TYPE")  # tempest's RemoteClient.get_disks does exactly this
    assert pos > 0 and rows, out
    assert all(row[pos : pos + 4] == "disk" for row in rows), out
    assert all(not row.split()[0].startswith(("loop", "ram")) for row in rows), out
