"""The timed KVM probe decides within about a second and never hangs (LAB.md)."""

from __future__ import annotations

import logging
import time

import pytest

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


def test_decision_is_logged_with_its_reason_and_figures(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(accel, "_decision", None)
    monkeypatch.delenv("KUMO_ACCEL", raising=False)
    measured = accel.AccelDecision("tcg", "KVM too slow: 5000000 loop iterations", 0.512)
    monkeypatch.setattr(accel, "probe", lambda: measured)
    with caplog.at_level(logging.INFO, logger=accel.__name__):
        assert accel.decide() is measured
        accel.decide()  # decided once, logged once
    (line,) = [r.getMessage() for r in caplog.records if r.name == accel.__name__]
    assert line == "accelerator tcg: KVM too slow: 5000000 loop iterations (probe took 512 ms)"


def test_a_too_slow_kvm_says_how_long_the_probe_ran(monkeypatch: pytest.MonkeyPatch) -> None:
    # A child that never finishes stands for a software-emulated KVM.
    monkeypatch.setattr(accel, "_run_loop_in_kvm", lambda device: time.sleep(30) or 0)
    decision = accel.probe(device="/dev/null", deadline=0.2)
    assert decision.accel == "tcg"
    assert "not done in 0.2 s, stopped after" in decision.reason
    assert decision.probe_seconds >= 0.2
