"""What notifications cost: ``POST /servers`` with ``[notifications] url`` set vs unset, and
how long a notification takes from its commit to the broker.

Two ``kumo up`` clouds run side by side in one window (fake hypervisor, SQLite unless
``--backend``), A without notifications and B publishing to the machine's RabbitMQ on
topics of its own. Rounds alternate A,B then B,A (ABBA), each round POSTing ``--batch``
servers from ``--clients`` concurrent clients and timing until the last POST answered:
both clouds see the same machine load, so the ratio of their throughputs is the cost of
writing the outbox in the request's transaction (the goal: within 10%).

Meanwhile a consumer (kombu) reads B's versioned queue and takes, for every message, the
time from its ``timestamp`` (set when the outbox row was flushed, in the request's
transaction, just before the commit) until it arrived: publish latency as a consumer sees
it, which includes the controller's publish and confirm (the goal: p99 under 1 s). The
controller's own histogram (``kumo_outbox_publish_seconds``, commit to confirm) is shown
too.

Run: ``.venv/bin/python bench/notifications.py`` (``--quick`` for a short run). Everything
started is stopped at the end, and the queues it declared are deleted.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import kombu
from prometheus_client.parser import text_string_to_metric_families

from _common import (
    BACKENDS,
    BenchError,
    Proc,
    admin_token,
    clean_env,
    cpu_seconds,
    database_config,
    lift_quotas,
    log,
    machine,
    percentile,
    print_table,
    start_up,
)

RABBIT = "amqp://guest:guest@127.0.0.1:5672/"
FLAVOR = "1"
BIG = {  # one host that never runs out of room: every POST is a server that gets placed
    "KUMO_AGENT_INVENTORY_VCPUS": "100000",
    "KUMO_AGENT_INVENTORY_MEMORY_MB": "100000000",
    "KUMO_AGENT_INVENTORY_DISK_GB": "100000",
}


class Cloud:
    def __init__(self, name: str, root: Path, env: dict[str, str], db_url: str) -> None:
        self.name = name
        self.root = root
        self.up: Proc | None = None
        self.up, self.url = start_up(root, env, database_config(db_url))
        token, project_id = admin_token(self.url, root / "state")
        self.headers = {"X-Auth-Token": token, "X-OpenStack-Nova-API-Version": "2.10"}
        lift_quotas(db_url, project_id)
        images = httpx.get(
            f"{self.url}/image/v2/images", params={"name": "kumo-tiny"}, headers=self.headers
        ).json()["images"]
        if not images:
            raise BenchError(f"{name}: no kumo-tiny image")
        self.image_id = images[0]["id"]
        self.clients = [httpx.Client(base_url=self.url, headers=self.headers, timeout=60)]

    def post_batch(self, count: int, clients: int) -> tuple[float, float]:
        """POST ``count`` servers from ``clients`` threads: servers per second, and the
        CPU milliseconds the cloud's process spent per server meanwhile (its API, its
        controller with the publisher, and its agent: steadier than the rate on a
        machine shared with other work)."""
        while len(self.clients) < clients:
            self.clients.append(httpx.Client(base_url=self.url, headers=self.headers, timeout=60))
        body = {"server": {"name": "bench", "imageRef": self.image_id, "flavorRef": FLAVOR}}

        def post(index: int) -> None:
            resp = self.clients[index % clients].post("/compute/v2.1/servers", json=body)
            if resp.status_code != 202:
                raise BenchError(f"{self.name}: POST /servers {resp.status_code} {resp.text[:200]}")

        assert self.up is not None
        cpu = cpu_seconds(self.up.pid)
        start = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(post, range(count)))
        rate = count / (time.perf_counter() - start)
        return rate, (cpu_seconds(self.up.pid) - cpu) * 1000 / count

    def metrics(self) -> dict[str, float]:
        text = httpx.get(f"{self.url}/metrics", timeout=30).text
        return {
            sample.name + json.dumps(sample.labels, sort_keys=True): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

    def stop(self) -> None:
        for client in self.clients:
            client.close()
        if self.up is not None:
            self.up.stop()


class Consumer(threading.Thread):
    """Reads a queue and keeps, per message, seconds from its timestamp to its arrival."""

    def __init__(self, queue: str) -> None:
        super().__init__(daemon=True)
        self.queue = queue
        self.latencies: list[float] = []
        self.ids: set[str] = set()
        self.duplicates = 0
        self.stopping = threading.Event()
        self.ready = threading.Event()

    def run(self) -> None:
        with kombu.Connection(RABBIT) as connection:
            exchange = kombu.Exchange("nova", type="topic", durable=False)
            queue = kombu.Queue(self.queue, exchange, routing_key=self.queue, durable=False)
            with connection.Consumer(queue, callbacks=[self.on_message], accept=["json"]):
                self.ready.set()
                while not self.stopping.is_set():
                    try:
                        connection.drain_events(timeout=0.5)
                    except TimeoutError:
                        continue

    def on_message(self, body: Any, message: Any) -> None:
        arrived = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        inner = json.loads(body["oslo.message"])
        sent = dt.datetime.fromisoformat(inner["timestamp"])
        self.latencies.append((arrived - sent).total_seconds())
        if inner["message_id"] in self.ids:
            self.duplicates += 1
        self.ids.add(inner["message_id"])
        message.ack()


def histogram_p99(samples: dict[str, float], name: str) -> tuple[float, float]:
    """(count, upper bound of the bucket holding the 99th percentile) of a histogram."""
    buckets = sorted(
        (float(json.loads(key[len(name + "_bucket") :])["le"]), value)
        for key, value in samples.items()
        if key.startswith(name + "_bucket")
    )
    total = buckets[-1][1] if buckets else 0.0
    for bound, cumulative in buckets:
        if total and cumulative >= 0.99 * total:
            return total, bound
    return total, float("nan")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=8, help="ABBA rounds (each cloud once each)")
    p.add_argument("--batch", type=int, default=40, help="servers POSTed per cloud per round")
    p.add_argument("--clients", type=int, default=4, help="concurrent clients")
    p.add_argument("--quick", action="store_true", help="4 rounds of 20")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument(
        "--backend", choices=sorted(BACKENDS), default="sqlite", help="both clouds' database"
    )
    args = p.parse_args()
    if args.quick:
        args.rounds, args.batch = 4, 20

    tag = f"kumobench-{uuid.uuid4().hex[:10]}"
    versioned_queue = f"{tag}.versioned.info"
    base = clean_env(KUMO_COMPUTE_HYPERVISOR="fake", **BIG)
    on_env = dict(
        base,
        KUMO_NOTIFICATIONS_URL=RABBIT,
        KUMO_NOTIFICATIONS_VERSIONED_TOPIC=f"{tag}.versioned",
        KUMO_NOTIFICATIONS_TOPIC=f"{tag}.legacy",
    )
    consumer = Consumer(versioned_queue)
    consumer.start()
    consumer.ready.wait(30)
    clouds: dict[str, Cloud] = {}
    rates: dict[str, list[float]] = {"off": [], "on": []}
    cpu: dict[str, list[float]] = {"off": [], "on": []}
    try:
        with (
            tempfile.TemporaryDirectory(prefix="kumo-bench-notify-") as tmp,
            contextlib.ExitStack() as databases,
        ):
            log(f"starting two clouds (notifications off and on) on {args.backend}")
            for name, env in (("off", base), ("on", on_env)):
                root = Path(tmp) / name
                db_url = databases.enter_context(BACKENDS[args.backend](root))
                clouds[name] = Cloud(name, root, env, db_url)
            for name in ("off", "on"):  # warm-up, not counted
                clouds[name].post_batch(min(10, args.batch), args.clients)
            for round_ in range(args.rounds):
                order = ("off", "on") if round_ % 2 == 0 else ("on", "off")
                for name in order:
                    rate, cpu_ms = clouds[name].post_batch(args.batch, args.clients)
                    rates[name].append(rate)
                    cpu[name].append(cpu_ms)
                log(f"round {round_ + 1}: off {rates['off'][-1]:.1f}/s, on {rates['on'][-1]:.1f}/s")
            # Every server's create.start and create.end reach the consumer.
            expected = 2 * (min(10, args.batch) + args.rounds * args.batch)
            deadline = time.monotonic() + 120
            while len(consumer.ids) < expected and time.monotonic() < deadline:
                time.sleep(0.2)
            samples = clouds["on"].metrics()
    finally:
        for cloud in clouds.values():
            cloud.stop()
        consumer.stopping.set()
        consumer.join(10)
        with kombu.Connection(RABBIT) as connection:
            channel = connection.channel()
            for queue in (versioned_queue, f"{tag}.legacy.info"):
                channel.queue_delete(queue)

    off, on = sorted(rates["off"]), sorted(rates["on"])
    median_off, median_on = off[len(off) // 2], on[len(on) // 2]
    ratio = median_on / median_off
    cpu_off, cpu_on = sorted(cpu["off"])[len(off) // 2], sorted(cpu["on"])[len(on) // 2]
    count, bound = histogram_p99(samples, "kumo_outbox_publish_seconds")
    latencies = consumer.latencies
    result = {
        "machine": machine(),
        "rounds": args.rounds,
        "batch": args.batch,
        "clients": args.clients,
        "backend": args.backend,
        "post_sps_off": rates["off"],
        "post_sps_on": rates["on"],
        "median_off": median_off,
        "median_on": median_on,
        "on_over_off": ratio,
        "cpu_ms_per_post_off": cpu_off,
        "cpu_ms_per_post_on": cpu_on,
        "received": len(consumer.ids),
        "expected": expected,
        "duplicates": consumer.duplicates,
        "latency_p50_s": percentile(latencies, 50) if latencies else None,
        "latency_p99_s": percentile(latencies, 99) if latencies else None,
        "latency_max_s": max(latencies) if latencies else None,
        "controller_histogram_count": count,
        "controller_p99_bucket_s": bound,
    }
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        print()
    else:
        print_table(
            [
                ["measure", "value", "goal"],
                ["POST /servers/s, notifications off (median)", f"{median_off:.1f}", ""],
                ["POST /servers/s, notifications on (median)", f"{median_on:.1f}", ""],
                ["on / off", f"{ratio:.3f}", ">= 0.90"],
                ["cloud CPU ms per POST, off (median)", f"{cpu_off:.1f}", ""],
                ["cloud CPU ms per POST, on (median)", f"{cpu_on:.1f}", ""],
                ["versioned notifications received", f"{len(consumer.ids)}/{expected}", "all"],
                ["received twice (same message_id)", str(consumer.duplicates), "0"],
                ["commit -> consumer p50 s", f"{result['latency_p50_s']:.3f}", ""],
                ["commit -> consumer p99 s", f"{result['latency_p99_s']:.3f}", "< 1"],
                ["commit -> consumer max s", f"{result['latency_max_s']:.3f}", ""],
                ["controller commit -> confirm p99 bucket s", f"<= {bound}", ""],
            ],
            left=1,
        )
    ok = (
        ratio >= 0.9
        and len(consumer.ids) == expected
        and consumer.duplicates == 0
        and (result["latency_p99_s"] or 99) < 1.0
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
