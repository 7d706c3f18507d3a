"""An oslo.messaging NotificationListener, run from .venv-oslo by tests/e2e/test_notifications.py.

It is the consumer Ceilometer and operators' scripts are: oslo.messaging's own rabbit
driver decodes the envelope kumo wrote. Each notification it receives is written as one
JSON line to the output file (event type, priority, publisher, payload and the metadata's
message_id and timestamp), flushed at once so the test can read it while this runs. It
stops at SIGTERM.

Usage: listener.py URL EXCHANGE OUTPUT TOPIC [TOPIC...]
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from typing import Any

import oslo_messaging
from oslo_config import cfg


class Recorder:
    """The listener's endpoint: every priority it may receive, each written as a line."""

    def __init__(self, output: Any) -> None:
        self.output = output
        self.lock = threading.Lock()

    def _write(
        self, priority: str, publisher_id: str, event_type: str, payload: Any, metadata: Any
    ) -> None:
        line = {
            "priority": priority,
            "publisher_id": publisher_id,
            "event_type": event_type,
            "payload": payload,
            "message_id": metadata.get("message_id"),
            "timestamp": metadata.get("timestamp"),
        }
        with self.lock:
            self.output.write(json.dumps(line) + "\n")
            self.output.flush()

    def info(
        self, ctxt: Any, publisher_id: str, event_type: str, payload: Any, metadata: Any
    ) -> None:
        self._write("INFO", publisher_id, event_type, payload, metadata)

    def error(
        self, ctxt: Any, publisher_id: str, event_type: str, payload: Any, metadata: Any
    ) -> None:
        self._write("ERROR", publisher_id, event_type, payload, metadata)


def main() -> None:
    url, exchange, output_path, *topics = sys.argv[1:]
    conf = cfg.ConfigOpts()
    conf([], project="kumo-test-listener")
    transport = oslo_messaging.get_notification_transport(conf, url=url)
    targets = [oslo_messaging.Target(topic=topic, exchange=exchange) for topic in topics]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with open(output_path, "a", encoding="utf-8") as output:
        listener = oslo_messaging.get_notification_listener(
            transport, targets, [Recorder(output)], executor="threading"
        )
        # One dispatch thread: with oslo's default pool (64 threads) two messages of one
        # queue may reach the endpoint in either order, and the tests check the order kumo
        # published them in. (The server registered this option above.)
        conf.set_override("executor_thread_pool_size", 1)
        listener.start()
        print("listening", flush=True)
        stop.wait()
        listener.stop()
        listener.wait()
    transport.cleanup()


if __name__ == "__main__":
    main()
