"""The timed KVM probe decides within about a second and never hangs (LAB.md)."""

from __future__ import annotations

import time

from kumo.drivers.hypervisor import accel


def test_probe_decides_quickly() -> None:
    start = time.monotonic()
    decision = accel.probe(deadline=0.5)
    assert time.monotonic() - start < 1.5
    assert decision.accel in ("kvm", "tcg")
    assert decision.reason


def test_missing_device_means_tcg(tmp_path) -> None:  # type: ignore[no-untyped-def]
    decision = accel.probe(device=str(tmp_path / "no-kvm"))
    assert decision.accel == "tcg"
    assert "does not exist" in decision.reason


def test_decision_is_cached() -> None:
    assert accel.decide() is accel.decide()
