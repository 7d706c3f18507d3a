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


def _refusal(action: str, server: Server) -> str:
    with pytest.raises(Conflict) as refused:
        states.check(action, server)
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
    assert _refusal("reboot", Server(task_state="rebooting")) == (
        "Cannot 'reboot' instance s1 while it is in task_state rebooting"
    )


def test_an_entry_without_vm_states_allows_any() -> None:
    states.check("abort", Server(vm_state="paused", task_state="migrating"))
    assert _refusal("abort", Server(vm_state="paused")) == (
        "Cannot 'abort' instance s1 while it is in task_state None"
    )
    states.check("detach_volume", Server(vm_state="shelved_offloaded"))


def test_a_hard_reboot_refused_is_named_as_a_reboot() -> None:
    """The table's key differs from the action's name in Nova's words."""
    assert _refusal("reboot_hard", Server(vm_state="rescued")) == (
        "Cannot 'reboot' instance s1 while it is in vm_state rescued"
    )


def test_every_declared_transition_is_in_the_table() -> None:
    """An operation's transition (kumo.core.operations, phase 3) names a table entry: a
    typo would be a KeyError (500) at the first request."""
    from kumo.core.compute import server_operations, volume_operations
    from kumo.core.operations import Operation

    declared = [
        (name, op.transition)
        for module in (server_operations, volume_operations)
        for name, op in vars(module).items()
        if isinstance(op, Operation) and op.transition is not None
    ]
    assert len(declared) > 25
    for name, transition in declared:
        keys = (
            [transition]
            if isinstance(transition, str)
            else [transition(server_operations.Reboot("s1", kind)) for kind in ("SOFT", "HARD")]
        )
        for key in keys:
            assert key in states.SERVER_TRANSITIONS, f"{name}: {key}"
