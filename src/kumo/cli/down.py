"""`kumo down`: take one state directory's cloud off this machine.

Guests outlive `kumo up` by design (DESIGN.md section 4: an agent restart must not touch
them), so Ctrl-C leaves them running; this is the command that stops them. In order:

1. the `kumo up` or `kumo serve agent` still running for the state directory (found by the
   locks they hold, kumo.cli.owner) gets SIGTERM and is waited for: a running agent would
   start again the guests this stops, so `kumo down` stops it rather than fight it;
2. every guest of the state directory (found by its pidfile and instance directory, never
   by process name) gets an ACPI power-down and until the deadline to go, then is killed;
   disk exports for migrations (qemu-nbd) end too, and raw volumes leave their loop devices;
3. the datapath: `kumo network teardown`'s code (dnsmasq, router, host and provider
   namespaces, bridges, nftables);
4. with --purge, the state directory itself.

Stopped guests are shut off, not forgotten: the next `kumo up` finds them powered off and
reports them SHUTOFF (as Nova's power sync does after a host reboot); `openstack server
start` boots them again. Safe to repeat, and on a cloud that is not running.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from rich.progress import Progress

from kumo.agent.network_setup import teardown
from kumo.cli import owner
from kumo.cli.output import err_console
from kumo.config import Config
from kumo.drivers.network.netns import NetworkError

OWNER_STOP_SECONDS = 30.0


class DownError(Exception):
    """What stopped `kumo down` half-way; the message says what is still running."""


@dataclass
class DownReport:
    owners: list[str] = field(default_factory=list)
    guests: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # guests that could not be stopped
    network: list[str] = field(default_factory=list)
    purged: Path | None = None
    purge_requested: bool = False

    def lines(self) -> list[str]:
        done = [f"stopped {o}" for o in self.owners]
        done += [f"stopped guest {g}" for g in self.guests]
        done += [f"could not stop guest {g}" for g in self.failed]
        done += self.network
        if self.purged is not None:
            done.append(f"removed {self.purged}")
        elif self.failed and self.purge_requested:
            done.append("nothing was removed: some guests could not be stopped")
        return done


def purge_problem(state_dir: Path) -> str | None:
    """Why ``state_dir`` must not be removed wholesale, if it does not look like kumo's."""
    if state_dir == Path(state_dir.anchor) or state_dir == Path.home():
        return f"{state_dir} is not a state directory kumo would make"
    if not ((state_dir / "agent").is_dir() and (state_dir / "logs").is_dir()):
        return f"{state_dir} has no agent/ and logs/: it does not look like a kumo state directory"
    return None


def _stop_owners(state_dir: Path) -> list[str]:
    stopped = []
    for which in (owner.UP, owner.AGENT):
        found = owner.owner(state_dir, which)
        if found is None:
            continue
        if found.command == "kumo down":
            raise DownError(f"{found} is already taking {state_dir} down")
        if found.pid <= 0:
            raise DownError(f"{found} is starting for {state_dir}; run kumo down again")
        try:
            cmdline = Path(f"/proc/{found.pid}/cmdline").read_bytes()
        except OSError:
            cmdline = b""
        if b"kumo" not in cmdline:
            raise DownError(f"{found} holds {state_dir / which} but is not a kumo process")
        err_console.print(f"stopping {found} ...")
        deadline = time.monotonic() + OWNER_STOP_SECONDS
        try:
            os.kill(found.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        except PermissionError:
            raise DownError(f"not allowed to stop {found}: run kumo down as its user") from None
        while owner.owner(state_dir, which) is not None:
            if time.monotonic() > deadline:
                raise DownError(
                    f"{found} did not stop within {OWNER_STOP_SECONDS:.0f} s of SIGTERM; "
                    "it still runs the cloud, nothing else was stopped"
                )
            time.sleep(0.1)
        stopped.append(str(found))
    return stopped


def _stop_guests(agent_dir: Path, timeout: float) -> tuple[list[str], list[str]]:
    """Power off every running guest under ``agent_dir`` at once (ACPI, then kill at the
    deadline) and end any disk export. (stopped, could not be stopped with why)."""
    if not (agent_dir / "instances").is_dir():
        return [], []
    from kumo.drivers.hypervisor.base import PowerState
    from kumo.drivers.hypervisor.qemu import QemuDriver

    driver = QemuDriver(agent_dir)
    guests = driver.list_guests()
    for guest in guests:
        driver.end_export(guest.uuid)
        if guest.power_state == PowerState.CRASHED:
            # Its pidfile goes: the next `kumo up` finds it off (SHUTOFF), not killed
            # (which the agent's guest restart would start again).
            driver.power_off(guest.uuid, timeout)
    running = [g for g in guests if g.pid is not None]
    stopped: list[str] = []
    failed: list[str] = []
    if not running:
        return stopped, failed
    with (
        Progress(console=err_console, transient=True) as progress,
        ThreadPoolExecutor(max_workers=min(16, len(running))) as pool,
    ):
        bar = progress.add_task(f"stopping {len(running)} guests", total=len(running))
        futures = {pool.submit(driver.power_off, g.uuid, timeout): g for g in running}
        for future in as_completed(futures):
            guest = futures[future]
            label = f"{guest.name or guest.uuid} ({guest.uuid})"
            try:
                after = future.result()
            except Exception as exc:
                failed.append(f"{label}: {exc}")
            else:
                if after.pid is None:
                    stopped.append(label)
                else:
                    failed.append(f"{label}: still running as pid {after.pid}")
            progress.advance(bar)
    return sorted(stopped), sorted(failed)


def _detach_loop_devices(agent_dir: Path) -> None:
    """Detach the loop devices of the raw backend's volumes (their guests are stopped; the
    next `kumo up` attaches them again on demand), so that no device of the state
    directory outlives it, nor holds on to a purged file."""
    from kumo.drivers.storage.volumes import registry
    from kumo.drivers.storage.volumes.base import VolumeBackendError

    if not registry.root_for("raw", agent_dir).is_dir():
        return
    try:
        backend = registry.create("raw", agent_dir, loop_device=True)
    except VolumeBackendError:
        return  # no usable losetup here: nothing can have been attached
    for volume_id in backend.list_volumes():
        backend.disconnect(volume_id)


def down(config: Config, purge: bool, timeout: float) -> DownReport:
    """Stop everything of ``config.state_dir`` on this machine (see the module's doc)."""
    state_dir = config.state_dir
    report = DownReport(purge_requested=purge)
    if not state_dir.is_dir():
        return report
    if purge and (problem := purge_problem(state_dir)):
        raise DownError(f"{problem}; not removing it")
    report.owners = _stop_owners(state_dir)
    try:
        with (
            owner.hold(state_dir, owner.UP, "kumo down"),
            owner.hold(state_dir, owner.AGENT, "kumo down"),
        ):
            report.guests, report.failed = _stop_guests(state_dir / "agent", timeout)
            if not report.failed:
                _detach_loop_devices(state_dir / "agent")
            with err_console.status("removing the datapath"):
                try:
                    report.network = teardown(config)
                except NetworkError as exc:
                    raise DownError(f"removing the datapath failed: {exc}") from None
    except owner.Busy as exc:
        raise DownError(f"{exc.owner} started meanwhile; run kumo down again") from None
    if purge and not report.failed:
        shutil.rmtree(state_dir)
        report.purged = state_dir
    return report
