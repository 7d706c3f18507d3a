"""The lab itself: a test run killed outright leaves namespaces and a dnsmasq behind, and
the next run removes them (only those of runs whose PID is gone)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from netlab import Lab, sweep_dead_runs

from kumo.drivers.network import netns

KILLED_RUN = textwrap.dedent(
    """
    import os, sys, uuid
    sys.path[:0] = [{here!r}, {tests!r}]
    from pathlib import Path
    from netlab import Lab
    from test_l2_dhcp import spec_one_network
    lab = Lab(Path({tmp!r}))
    host = lab.ns("host")
    lab.driver().apply(spec_one_network(host, str(uuid.uuid4()), []))
    print(lab.run_id, flush=True)
    os._exit(0)  # no cleanup at all, as if killed
    """
)


def _running(pid: int) -> bool:
    """Alive and not a zombie waiting for init to reap it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_sweep_removes_what_a_killed_run_left(lab: Lab, tmp_path: Path) -> None:
    here = str(Path(__file__).parent)
    code = KILLED_RUN.format(here=here, tests=str(Path(here).parents[1]), tmp=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    run_id = out.stdout.strip()
    run_dir = Path(f"/tmp/kdp-p{run_id}")
    leftover = [ns for ns in netns.namespaces() if ns.startswith(f"kdp-p{run_id}-")]
    owned = (next(run_dir.glob("state-*")) / "owned.json").read_text()
    assert leftover and "kumo-dhcp-" in owned
    dhcp_ns = next(ns for ns in netns.namespaces() if ns in owned)
    pids = netns.ip(None, "netns", "pids", dhcp_ns).split()
    assert pids, "a dnsmasq was left running"

    sweep_dead_runs()
    assert not [ns for ns in netns.namespaces() if ns.startswith(f"kdp-p{run_id}-")]
    assert not netns.exists(dhcp_ns)
    assert not run_dir.exists()
    assert not any(_running(int(pid)) for pid in pids)
    assert netns.exists(lab.ns("alive")), "a live run's namespaces are left alone"
