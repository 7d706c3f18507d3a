"""A stopping server ends every long-poll its agents may be waiting in (servers, volumes,
network) at once, so none holds uvicorn's graceful shutdown; in-process loops keep
their own pace."""

from __future__ import annotations

import time

import pytest

from kumo.core import wakeup


@pytest.fixture
def stopping(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wakeup, "_stopping", False)  # restored after the test
    wakeup.interrupt()


@pytest.mark.parametrize(
    "topic", [wakeup.host_topic("h1"), wakeup.volume_topic("h1"), wakeup.NETWORK]
)
def test_agent_long_polls_end_when_the_server_stops(stopping: None, topic: str) -> None:
    started = time.monotonic()
    wakeup.wait(topic, wakeup.mark(topic), 30.0)
    assert time.monotonic() - started < 5.0


def test_in_process_loops_keep_their_pace(stopping: None) -> None:
    started = time.monotonic()
    wakeup.wait(wakeup.SCHEDULER, wakeup.mark(wakeup.SCHEDULER), 0.2)
    assert time.monotonic() - started >= 0.2
