"""Self-fencing: an agent that cannot renew its heartbeat for ``[ha] self_fence_after``
seconds stops every guest of its host, before the controller's deadline for evacuating
them passes (that deadline is self_fence_after + self_fence_margin after the host's last
heartbeat, kumo.core.ha), so a server never runs on two hosts at once.

It runs on a thread of its own, on the monotonic clock, and never waits for the API: the
heartbeat's HTTP call may hang for its whole timeout when the network is gone. While not
fenced it also renews the host's storage lease (a file named by the host's UUID in the
shared ``[ha] lease_dir``), the controller's second signal that the host lives; once
fenced it stops renewing it, so the controller sees the host dead on both paths.

When the heartbeat is renewed again the agent is no longer fenced: its compute loop then
converges the servers the API still gives it (those not evacuated start again; the
evacuated ones are destroyed, kumo.agent.compute). The time of each self-fence is kept in
``STATE_DIR/agent/self-fenced`` for the operator (and the tests) to read.

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

    def renewed(self) -> None:
        """The control plane answered a heartbeat (or a registration)."""
        with self._lock:
            self._last = self.clock()
            if self.fenced:
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
