"""The servers' transition table (kumo.core.compute.states): each refusal is Nova's 409,
naming the attribute that refused it, generated from the table rather than written by
hand at each action."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from kumo.core.compute import states
from kumo.core.errors import Conflict


@dataclass
class Server:
    id: str = "s1"
    vm_state: str = "active"
    task_state: str | None = None


def _refusal(action: str, server: Server, shown: str | None = None) -> str:
    with pytest.raises(Conflict) as refused:
        states.check(action, server, shown)
    return refused.value.message


def test_the_wrong_vm_state_is_named() -> None:
    assert _refusal("start", Server(vm_state="active")) == (
        "Cannot 'start' instance s1 while it is in vm_state active"
    )


def test_a_task_in_flight_is_named() -> None:
    assert _refusal("stop", Server(task_state="rebooting")) == (
        "Cannot 'stop' instance s1 while it is in task_state rebooting"
    )


def test_a_hard_reboot_takes_over_a_soft_one_but_not_the_reverse() -> None:
    states.check("reboot_hard", Server(task_state="rebooting"))
    assert _refusal("reboot", Server(task_state="rebooting"), "reboot") == (
        "Cannot 'reboot' instance s1 while it is in task_state rebooting"
    )


def test_an_entry_without_vm_states_allows_any() -> None:
    states.check("abort", Server(vm_state="paused", task_state="migrating"))
    assert _refusal("abort", Server(vm_state="paused")) == (
        "Cannot 'abort' instance s1 while it is in task_state None"
    )
    states.check("detach_volume", Server(vm_state="shelved_offloaded"))
