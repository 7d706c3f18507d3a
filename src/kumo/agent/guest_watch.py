"""The agent's watch on running guests: notice within a second that a guest's process is
gone, so that its report (and the cloud's guest restart, kumo.core.compute.guest_restart)
need not wait for the next full resync, which comes every poll (20 s by default).

It only looks: whether a process still runs each guest the agent last reported running
(``HypervisorDriver.has_process``, cheap: no QMP). One that has none is handed to the
compute loop to look at properly and report (``recheck``); the loop decides nothing on
its own either: whether the guest is started again is the control plane's call. A guest
the agent is working on (stopping it, migrating it...) is the loop's to report, so the
loop ignores rechecks of those.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable

from kumo.drivers.hypervisor.base import HypervisorDriver, HypervisorError

log = logging.getLogger(__name__)

INTERVAL = 1.0  # seconds between looks: the restart's reaction time, at a cost of a stat


class GuestWatch:
    """Calls ``recheck(uuid)`` for each guest of ``running()`` whose process is gone."""

    def __init__(
        self,
        driver: HypervisorDriver,
        running: Callable[[], Iterable[str]],
        recheck: Callable[[str], None],
        interval: float = INTERVAL,
    ) -> None:
        self.driver = driver
        self.running = running
        self.recheck = recheck
        self.interval = interval

    def check_once(self) -> list[str]:
        """One look at every guest believed running; the ones found without a process."""
        gone = []
        for uuid in self.running():
            try:
                alive = self.driver.has_process(uuid)
            except HypervisorError:
                continue
            if not alive:
                gone.append(uuid)
                self.recheck(uuid)
        return gone

    def run(self, stop: threading.Event) -> None:
        while not stop.wait(self.interval):
            try:
                self.check_once()
            except Exception:  # the watch must outlive any one bad look
                log.exception("watching guests failed")
