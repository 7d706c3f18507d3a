"""Self-fencing: an agent that cannot renew its heartbeat for ``[ha] self_fence_after``
seconds stops every guest of its host, before the controller's deadline for evacuating
them passes (that deadline is self_fence_after + self_fence_margin after the host's last
heartbeat, kumo.core.ha), so a server never runs on two hosts at once.

It runs on a thread of its own, on the monotonic clock, and never waits for the API: the
heartbeat's HTTP call may hang for its whole timeout when the network is gone. While not
fenced it also renews the host's storage lease (a file named by the host's UUID in the
shared ``[ha] lease_dir``), the controller's second signal that the host lives; once
fenced it stops renewing it, so the controller sees the host dead on both paths.

While fenced, the driver the compute loop uses (``guard``) refuses to start any guest
(spawn, power on, resume, reboot...), whatever asks: an evacuated server must not run
here again, and the API may already have given it to another host. Stopping, destroying
and reading are allowed, so a reconnected agent still cleans up what moved. The fence
ends when the heartbeat is renewed *and* the API says the host is not forced down: a
host the controller declared dead stays fenced until an operator clears the flag (or the
controller itself, when the host answered before anything moved). The time of each
self-fence is kept in ``STATE_DIR/agent/self-fenced`` for the operator (and the tests).

What it cannot do: act while the whole host is frozen (its thread is frozen too). Such a
host needs a fence command (IPMI, Redfish), or a hardware watchdog (README, "High
availability").
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from kumo.drivers.hypervisor.base import HypervisorDriver, HypervisorError, PowerState

log = logging.getLogger(__name__)

CHECK_INTERVAL = 0.5  # seconds between looks: well under any sensible self_fence_after
LIVE = (PowerState.RUNNING, PowerState.PAUSED)


class SelfFence:
    """The host's watchdog on its own control-plane contact."""

    def __init__(
        self,
        driver: HypervisorDriver | None,
        after: float,
        marker: Path,
        lease: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.driver = driver
        self.after = after
        self.marker = marker
        self.lease = lease
        self.clock = clock
        self.fenced = False
        self._last = clock()
        self._lock = threading.Lock()

    def renewed(self, forced_down: bool = False) -> None:
        """The control plane answered a heartbeat (or a registration), saying whether it
        holds this host forced down."""
        with self._lock:
            self._last = self.clock()
            if self.fenced and not forced_down:
                log.warning("self-fence: the API answers again; the compute loop takes over")
                self.fenced = False

    def check(self) -> bool:
        """One look: fence when the heartbeat is too old, else renew the storage lease.
        True when the host is fenced."""
        with self._lock:
            if self.fenced:
                return True
            alone = self.clock() - self._last
            if self.after > 0 and alone > self.after:
                self.fenced = True
            else:
                self._renew_lease()
                return False
        self._fence(alone)
        return True

    def _renew_lease(self) -> None:
        if self.lease is None:
            return
        try:
            self.lease.parent.mkdir(parents=True, exist_ok=True)
            self.lease.touch()
            os.utime(self.lease)
        except OSError as exc:  # shared storage gone: the controller sees a stale lease
            log.warning("storage lease %s: cannot renew it: %s", self.lease, exc)

    def _fence(self, alone: float) -> None:
        stopped: list[str] = []
        if self.driver is not None:
            try:
                guests = self.driver.list_guests()
            except HypervisorError as exc:
                log.error("self-fence: cannot list the guests: %s", exc)
                guests = []
            for guest in guests:
                if guest.pid is None and guest.power_state not in LIVE:
                    continue
                try:
                    self.driver.power_off(guest.uuid, timeout=0.0)  # hard: no time to wait
                    stopped.append(guest.uuid)
                except HypervisorError as exc:
                    log.error("self-fence: cannot stop guest %s: %s", guest.uuid, exc)
        log.error(
            "self-fence: no heartbeat renewed for %.0fs (limit %.0fs): stopped %d guest(s)",
            alone,
            self.after,
            len(stopped),
        )
        try:
            self.marker.parent.mkdir(parents=True, exist_ok=True)
            record = {"at": time.time(), "after": self.after, "stopped": stopped}
            self.marker.write_text(json.dumps(record) + "\n")
        except OSError as exc:
            log.error("self-fence: cannot write %s: %s", self.marker, exc)

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.check()
            except Exception:  # the watchdog must outlive any one failure
                log.exception("self-fence check failed")
            stop.wait(CHECK_INTERVAL)


# What a fenced host's driver refuses: everything that could make a guest run.
STARTS = frozenset(
    {
        "spawn",
        "power_on",
        "reboot",
        "unpause",
        "resume",
        "rescue",
        "unrescue",
        "finish_incoming",
        "prepare_incoming",
    }
)


class _Guarded:
    """The driver, refusing to start guests while the host is fenced."""

    def __init__(self, driver: HypervisorDriver, fence: SelfFence) -> None:
        self._driver = driver
        self._fence = fence

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._driver, name)
        if name not in STARTS:
            return attr

        def guarded(*args: Any, **kwargs: Any) -> Any:
            if self._fence.fenced:
                raise HypervisorError(
                    "this host fenced itself (no heartbeat renewed in time, or it is forced "
                    "down): no guest starts here until an operator clears it"
                )
            return attr(*args, **kwargs)

        return guarded


def guard(driver: HypervisorDriver, fence: SelfFence) -> HypervisorDriver:
    """``driver`` for the compute loop: the same, but no guest starts while fenced."""
    return cast(HypervisorDriver, _Guarded(driver, fence))
