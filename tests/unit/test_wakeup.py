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


def test_a_console_ask_for_an_agent_polling_elsewhere_goes_through_the_relay() -> None:
    """A reader's process whose agents long-poll another API copy relays the ask; the copy
    the agent polls hands it over with the agent's next answer and wakes that long-poll."""
    host, server = f"h-{time.monotonic_ns()}", "s1"
    sent: list[tuple[str, ...]] = []
    assert wakeup.want_console(host, server) is None  # alone: nobody would hear it
    undo = wakeup.relay_to(lambda topics: sent.append(tuple(topics)))
    try:
        mark = wakeup.want_console(host, server)
        assert mark == wakeup.mark(wakeup.console_topic(server))
        assert sent == [(f"{wakeup.CONSOLE_ASK}{host}:{server}",)]
        assert wakeup.consoles_wanted(host) == []  # not handed to an agent here
    finally:
        undo()
    # In the process the host's agent long-polls, the relayed ask arrives:
    wakeup.agent_polled(host)
    poll = wakeup.mark(wakeup.host_topic(host))
    wakeup.notify_local(sent[0])
    assert wakeup.mark(wakeup.host_topic(host)) != poll  # its long-poll answers now
    assert wakeup.consoles_wanted(host) == [server]
    assert wakeup.mark(f"{wakeup.CONSOLE_ASK}{host}:{server}") == 0  # not a topic of its own


def test_a_malformed_console_ask_is_dropped() -> None:
    """Only kumo writes asks, but a stray notification on the channel must not hand an
    agent an empty server id or a host nobody has."""
    host = f"h-{time.monotonic_ns()}"
    wakeup.agent_polled(host)
    poll = wakeup.mark(wakeup.host_topic(host))
    wakeup.notify_local([f"{wakeup.CONSOLE_ASK}{host}", f"{wakeup.CONSOLE_ASK}:s1"])
    assert wakeup.consoles_wanted(host) == []
    assert wakeup.mark(wakeup.host_topic(host)) == poll
