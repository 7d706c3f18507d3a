"""Security-group rule propagation (issue 4, "Done when" 8): the time from ``POST
/v2.0/security-group-rules`` until the rule is in force on the host for every port of the
group, with ``--ports`` (50) ports on one host.

The script starts its own ``kumo up`` (SQLite, fake hypervisor, the real linux datapath
inside namespaces it creates; root needed), creates a network and ``--ports`` servers on
it (their ports share the project's default group, so each port's rules name all the
others), waits until every port is ACTIVE, then ``--changes`` (10) times adds a rule (a TCP
port) and measures until the host namespace's nftables rule set holds it for every port
(read with ``nft -j`` every 10 ms), then deletes it and measures until it is gone.

The agent's network loop long-polls for networking changes (woken when the rule's
transaction commits), then computes and applies the whole host spec: the time is that
computation, one `nft -f` transaction for all ports, and this script's own `nft -j` reads.

At the end the cloud is stopped by PID and ``kumo network teardown`` removes everything
it made in the kernel.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from kumo.agent.network_setup import namespace_suffix

from _common import (
    KUMO,
    BenchError,
    admin_token,
    clean_env,
    log,
    machine,
    percentile,
    print_table,
    start_up,
    wait_until,
)

NETWORK = "/network/v2.0"


def _rules_text(namespace: str) -> str:
    out = subprocess.run(
        ["ip", "netns", "exec", namespace, "nft", "-j", "list", "table", "inet", "kumo_fw"],
        capture_output=True,
        text=True,
        timeout=10,
    )
    return out.stdout


def _count_port(text: str, port: int) -> int:
    """How many ingress chains allow ``tcp dport port`` (one per port of the group)."""
    count = 0
    for item in json.loads(text or '{"nftables": []}').get("nftables", []):
        rule = item.get("rule")
        if (
            rule
            and rule.get("chain", "").startswith("ingress")
            and f'"right": {port}' in (json.dumps(rule.get("expr")))
        ):
            count += 1
    return count


def run(opts: argparse.Namespace) -> dict[str, Any]:
    if os.geteuid() != 0:
        raise BenchError("the linux datapath needs root (network namespaces)")
    root = Path(tempfile.mkdtemp(prefix="kumo-bench-sg-"))
    env = clean_env(
        KUMO_AGENT_NETWORK_DRIVER="linux",
        KUMO_COMPUTE_HYPERVISOR="fake",
        KUMO_AGENT_INVENTORY_VCPUS="512",
        KUMO_AGENT_INVENTORY_MEMORY_MB="1048576",
    )
    up, url = start_up(root, env)
    state = root / "state"
    try:
        token, project = admin_token(url, state)
        h = {"X-Auth-Token": token}
        c = httpx.Client(base_url=url, headers=h, timeout=60)
        c.put(
            f"{NETWORK}/quotas/{project}", json={"quota": {"port": -1, "security_group_rule": -1}}
        )
        c.put(
            f"/compute/v2.1/os-quota-sets/{project}",
            json={"quota_set": {"instances": -1, "cores": -1, "ram": -1}},
        )
        net = c.post(f"{NETWORK}/networks", json={"network": {"name": "bench"}}).json()["network"]
        c.post(
            f"{NETWORK}/subnets",
            json={"subnet": {"network_id": net["id"], "cidr": "10.90.0.0/22", "ip_version": 4}},
        )
        image = c.get("/image/v2/images", params={"name": "kumo-tiny"}).json()["images"][0]["id"]
        log(f"{opts.ports} servers on one network")
        body = {
            "server": {
                "name": "sg",
                "imageRef": image,
                "flavorRef": "1",
                "networks": [{"uuid": net["id"]}],
                "min_count": opts.ports,
                "max_count": opts.ports,
            }
        }
        made = c.post("/compute/v2.1/servers", json=body)
        if made.status_code != 202:
            raise BenchError(f"server create: {made.status_code} {made.text}")

        def all_active() -> bool:
            ports = c.get(
                f"{NETWORK}/ports", params={"network_id": net["id"], "device_owner": "compute:nova"}
            ).json()
            statuses = [p["status"] for p in ports["ports"]]
            return len(statuses) == opts.ports and set(statuses) == {"ACTIVE"}

        wait_until(all_active, 300, "every port ACTIVE")
        groups = c.get(f"{NETWORK}/security-groups", params={"project_id": project}).json()
        group = next(g["id"] for g in groups["security_groups"] if g["name"] == "default")
        host_ns = f"kumo-host-{namespace_suffix(state)}"
        add_times: list[float] = []
        del_times: list[float] = []
        for i in range(opts.changes):
            port = 20000 + i
            rule = {
                "security_group_rule": {
                    "security_group_id": group,
                    "direction": "ingress",
                    "protocol": "tcp",
                    "port_range_min": port,
                    "port_range_max": port,
                }
            }
            start = time.monotonic()
            made = c.post(f"{NETWORK}/security-group-rules", json=rule)
            rule_id = made.json()["security_group_rule"]["id"]
            wait_until(
                lambda p=port: _count_port(_rules_text(host_ns), p) >= opts.ports, 30, "the rule"
            )
            add_times.append(time.monotonic() - start)
            start = time.monotonic()
            c.delete(f"{NETWORK}/security-group-rules/{rule_id}")
            wait_until(
                lambda p=port: _count_port(_rules_text(host_ns), p) == 0, 30, "the rule gone"
            )
            del_times.append(time.monotonic() - start)
            log(
                f"change {i + 1}: add {add_times[-1] * 1000:.0f} ms, "
                f"delete {del_times[-1] * 1000:.0f} ms"
            )
        return {
            "machine": machine(),
            "ports": opts.ports,
            "changes": opts.changes,
            "add_ms": {
                "p50": percentile(add_times, 50) * 1000,
                "p99": percentile(add_times, 99) * 1000,
            },
            "delete_ms": {
                "p50": percentile(del_times, 50) * 1000,
                "p99": percentile(del_times, 99) * 1000,
            },
        }
    finally:
        up.stop()
        subprocess.run(
            [KUMO, "--state-dir", str(state), "network", "teardown"],
            env=env,
            capture_output=True,
            timeout=120,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ports", type=int, default=50)
    parser.add_argument("--changes", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    opts = parser.parse_args(argv)
    try:
        result = run(opts)
    except BenchError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
    if opts.json:
        print(json.dumps(result, indent=2))
        return 0
    print_table(
        [
            ["change", "ports", "p50 ms", "p99 ms"],
            [
                "add a rule",
                str(opts.ports),
                f"{result['add_ms']['p50']:.0f}",
                f"{result['add_ms']['p99']:.0f}",
            ],
            [
                "delete it",
                str(opts.ports),
                f"{result['delete_ms']['p50']:.0f}",
                f"{result['delete_ms']['p99']:.0f}",
            ],
        ]
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
