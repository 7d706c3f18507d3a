"""Who may write a server's vm_state or task_state (DESIGN.md section 3, rule 8): the steps
of the operations the lifecycle runs (kumo.core.operations), the path that records what
agents observe, and, until they move onto the lifecycle too, the writers listed as
remaining. A new writer anywhere else fails this test: run it as an operation
(kumo.core.compute.server_operations) instead.

The check reads the source (AST): assignments to ``.vm_state`` / ``.task_state``, the
keywords ``vm_state=`` / ``task_state=`` (a new row, an SQL UPDATE's values) and
``setattr(..., "vm_state" | "task_state", ...)``, each attributed to the function it is in.
"""

from __future__ import annotations

import ast
from pathlib import Path

import kumo

SRC = Path(kumo.__file__).parent
FIELDS = {"vm_state", "task_state"}

# (module, function): why it may write the states.
LIFECYCLE = {
    ("core/compute/server_create.py", "create"): "the create operation (its new rows)",
    ("core/compute/stuck.py", "_resolve"): "the stuck-task operation (controller, db check)",
    ("core/compute/migrations.py", "stuck"): "the stuck-task operation: a live migration",
    ("core/compute/servers.py", "_ask"): "every server action's desired state and task "
    "(the moves' too: evacuate, migrate, a cold move's revert)",
    ("core/compute/servers.py", "confirm_resize"): "the confirmResize operation",
    ("core/compute/migrations.py", "live_migrate"): "the os-migrateLive operation",
    ("core/compute/scheduling.py", "_place"): "the placement operation (the scheduler)",
    ("core/compute/scheduling.py", "_no_valid_host"): "the placement operation: no host",
    ("core/compute/shelve.py", "no_host"): "the placement operation: no host to unshelve on",
    ("core/compute/guest_restart.py", "_restart"): "the guest restart operation (controller): "
    "ERROR past the budget, SHUTOFF when opted out",
    ("core/ha.py", "_leave_down"): "the hostFailure operation: a server of a dead host "
    "left down (the controller's host failure pass)",
}
OBSERVED = {
    ("core/compute/reports.py", "_record"): "an agent's report of the guest's state",
    ("core/compute/reports.py", "set_task"): "an agent's report of its task's progress",
    ("core/compute/reports.py", "begin_snapshot_upload"): "an agent starts an upload",
    ("core/compute/moves.py", "cold_event"): "an agent's report on its part of a cold move",
    ("core/compute/moves.py", "_end_cold_badly"): "a cold move an agent reported failed",
    ("core/compute/migrations.py", "record_event"): "an agent's report on a live migration",
    ("core/compute/migrations.py", "end_badly"): "a live migration reported failed",
    ("core/compute/shelve.py", "offloaded"): "the guest is gone from its host (reported, "
    "or there was none: the shelveOffload operation)",
    ("core/compute/shelve.py", "failed"): "an agent reported a shelve failed",
    ("core/compute/servers.py", "finish_delete"): "the guest is gone (reported, or the "
    "server had no host: the delete operation)",
}
# Not on the lifecycle yet: none left (create, the scheduler and the stuck-task resolution
# moved onto it). A writer that cannot move at once is listed here with its reason, and
# leaves again when it does.
REMAINING: dict[tuple[str, str], str] = {}
ALLOWED = LIFECYCLE | OBSERVED | REMAINING


def _writes(tree: ast.AST) -> set[str]:
    """The functions (innermost name; ``<module>`` at the top) that write the states."""
    found: set[str] = set()

    def visit(node: ast.AST, function: str) -> None:
        for child in ast.iter_child_nodes(node):
            inside = (
                child.name
                if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
                else function
            )
            if _writes_here(child):
                found.add(inside)
            visit(child, inside)

    visit(tree, "<module>")
    return found


def _writes_here(node: ast.AST) -> bool:
    targets: list[ast.expr] = []
    if isinstance(node, ast.Assign):
        targets = node.targets
    elif isinstance(node, ast.AugAssign | ast.AnnAssign):
        targets = [node.target]
    for target in targets:
        for sub in ast.walk(target):
            if isinstance(sub, ast.Attribute) and sub.attr in FIELDS:
                return True
    if isinstance(node, ast.keyword) and node.arg in FIELDS:
        return True
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "setattr"
        and len(node.args) > 1
        and isinstance(node.args[1], ast.Constant)
        and node.args[1].value in FIELDS
    )


def _all_writers() -> set[tuple[str, str]]:
    return {
        (path.relative_to(SRC).as_posix(), function)
        for path in SRC.rglob("*.py")
        for function in _writes(ast.parse(path.read_text(), str(path)))
    }


def test_only_the_lifecycle_and_the_observation_path_write_server_states() -> None:
    unexpected = _all_writers() - ALLOWED.keys()
    assert not unexpected, (
        f"vm_state/task_state written outside the lifecycle: {sorted(unexpected)}; run the "
        "change as an operation (kumo.core.operations)"
    )


def test_the_allow_list_names_only_functions_that_still_write() -> None:
    """A writer moved onto the lifecycle leaves the list: it only shrinks."""
    stale = ALLOWED.keys() - _all_writers()
    assert not stale, f"no longer writing server states, remove from the list: {sorted(stale)}"


def test_the_rule_sees_each_way_of_writing() -> None:
    source = """
def attribute(i): i.vm_state = "error"
def chained(i): i.vm_state = i.desired_state = "stopped"
def keyword(s): s.execute(update(Instance).values(task_state=None))
def dynamic(i): setattr(i, "task_state", None)
def reading(i): return i.vm_state == "active"
"""
    assert _writes(ast.parse(source)) == {"attribute", "chained", "keyword", "dynamic"}
