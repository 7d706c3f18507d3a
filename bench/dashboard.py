"""Dashboard benchmark: the instances page with many servers, in headless Chromium.

Starts its own ``kumo up`` (SQLite, fake hypervisor with room for every server), lifts the
admin project's quotas, creates ``--servers`` (1,000) servers in max_count batches and
waits until they are ACTIVE. Then, with Debian's Chromium driven by Playwright:

* ``page load``: ``page.goto('/project/instances')`` until its first row is in the DOM
  (the first page of results, 20 rows), ``--loads`` times after one warm-up;
* ``page (server side)``: the same page fetched with httpx and the session cookie: what
  the API process spends rendering it (three API calls in process + the template);
* ``rows poll (server side)``: the 1 s poll's request alone;
* ``state change to page``: a server on the open page is stopped (or started) through
  Nova's API; the time from the API's 202 until the open page's row shows the new status
  (the agent's work plus the wait for the next poll), ``--changes`` times.

The aim (issue 15): page load < 500 ms p95 with 1,000 servers; a state change on the
page < 2 s. Run: ``.venv/bin/python bench/dashboard.py`` (``--servers 200`` for a short
run). Everything started is stopped by its PID at the end.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import httpx
from playwright.sync_api import Page, sync_playwright

from _common import (
    BenchError,
    admin_token,
    backend_run,
    clean_env,
    lift_quotas,
    log,
    machine,
    percentile,
    print_table,
    start_up,
    wait_until,
)

CHROMIUM = "/usr/bin/chromium"
COMPUTE = "/compute/v2.1"
BATCH = 100


def stats(name: str, seconds: list[float]) -> dict[str, Any]:
    return {
        "measure": name,
        "n": len(seconds),
        "p50_ms": round(percentile(seconds, 50) * 1000, 1),
        "p95_ms": round(percentile(seconds, 95) * 1000, 1),
        "max_ms": round(max(seconds) * 1000, 1),
    }


def create_servers(api: httpx.Client, count: int) -> None:
    image = api.get("/image/v2/images", params={"name": "kumo-tiny"}).json()["images"][0]["id"]
    made = 0
    while made < count:
        n = min(BATCH, count - made)
        body = {"name": f"bench-{made}", "imageRef": image, "flavorRef": "1"}
        if n > 1:
            body["min_count"] = body["max_count"] = n  # type: ignore[assignment]
        resp = api.post(f"{COMPUTE}/servers", json={"server": body})
        if resp.status_code != 202:
            raise BenchError(f"POST /servers: {resp.status_code} {resp.text[:300]}")
        made += n

    def all_active() -> bool:
        servers = api.get(f"{COMPUTE}/servers/detail", params={"limit": count}).json()["servers"]
        states = [s["status"] for s in servers]
        if "ERROR" in states:
            raise BenchError("a server went to ERROR")
        return len(states) == count and all(s == "ACTIVE" for s in states)

    took = wait_until(all_active, 600, f"{count} servers ACTIVE", interval=2)
    log(f"{count} servers ACTIVE after {took:.0f}s")


def sign_in(page: Page, password: str) -> None:
    page.goto("/auth/login")
    page.get_by_label("User name").fill("admin")
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_selector("#instance-rows tr")


def page_loads(page: Page, n: int) -> tuple[list[float], list[float]]:
    """Per load: the wall clock from goto() until the first row is in the DOM (with the
    driver's round trips), and the browser's own Navigation Timing from navigation start
    to DOMContentLoaded (the rows are in the HTML, so they are in the DOM then)."""
    wall, navigation = [], []
    for i in range(n + 1):
        start = time.perf_counter()
        page.goto("/project/instances", wait_until="domcontentloaded")
        page.wait_for_selector("#instance-rows tr[id^=server-]", state="attached")
        took = time.perf_counter() - start
        ready = page.evaluate(
            "performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd"
        )
        if i:  # the first is a warm-up
            wall.append(took)
            navigation.append(float(ready) / 1000)
    return navigation, wall


def server_side(
    url: str, cookies: dict[str, str], path: str, n: int, token: str = ""
) -> list[float]:
    """GET ``path`` ``n`` times (after one warm-up) with the session cookie or a token."""
    durations = []
    headers = {"X-Auth-Token": token} if token else {}
    with httpx.Client(base_url=url, cookies=cookies, headers=headers, timeout=30) as http:
        for i in range(n + 1):
            start = time.perf_counter()
            resp = http.get(path)
            took = time.perf_counter() - start
            if resp.status_code != 200:
                raise BenchError(f"GET {path}: {resp.status_code} {resp.text[:300]}")
            if i:
                durations.append(took)
    return durations


def state_changes(page: Page, api: httpx.Client, n: int) -> list[float]:
    """Stop, then start, the newest server (the first row) while the page is open."""
    page.goto("/project/instances")
    server_id = page.locator("#instance-rows tr[id^=server-]").first.get_attribute("id")
    assert server_id is not None
    server_id = server_id.removeprefix("server-")
    durations = []
    actions = [("os-stop", "SHUTOFF"), ("os-start", "ACTIVE")]
    for i in range(n):
        action, status = actions[i % 2]
        resp = api.post(f"{COMPUTE}/servers/{server_id}/action", json={action: None})
        if resp.status_code != 202:
            raise BenchError(f"{action}: {resp.status_code} {resp.text[:300]}")
        start = time.perf_counter()
        page.wait_for_function(
            "([id, status]) => document.getElementById('server-' + id)"
            "?.querySelector('.status')?.textContent === status",
            arg=[server_id, status],
            polling=20,
            timeout=60_000,
        )
        durations.append(time.perf_counter() - start)
    return durations


def run(opts: argparse.Namespace) -> dict[str, Any]:
    env = clean_env(
        KUMO_COMPUTE_HYPERVISOR="fake",
        KUMO_AGENT_HEARTBEAT_INTERVAL="1",
        KUMO_AGENT_INVENTORY_VCPUS=str(opts.servers * 2),
        KUMO_AGENT_INVENTORY_MEMORY_MB=str(opts.servers * 512 + 4096),
        KUMO_AGENT_INVENTORY_DISK_GB=str(opts.servers * 2 + 10),
    )
    results: list[dict[str, Any]] = []
    with backend_run("sqlite", "kumo-bench-web-") as (root, db_url):
        up, url = start_up(root, env)
        try:
            token, project_id = admin_token(url, root / "state")
            lift_quotas(db_url, project_id)
            password = (root / "state" / "admin-password").read_text().strip()
            with httpx.Client(base_url=url, headers={"X-Auth-Token": token}, timeout=120) as api:
                create_servers(api, opts.servers)
                with sync_playwright() as pw:
                    browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
                    try:
                        context = browser.new_context(base_url=url)
                        page = context.new_page()
                        sign_in(page, password)
                        cookies = {c["name"]: c["value"] for c in context.cookies()}
                        navigation, wall = page_loads(page, opts.loads)
                        results.append(stats("page load, navigation timing", navigation))
                        results.append(stats("page load, wall clock via driver", wall))
                        results.append(
                            stats(
                                "nova list, 20 servers (http)",
                                server_side(
                                    url, {}, f"{COMPUTE}/servers/detail?limit=20", opts.loads, token
                                ),
                            )
                        )
                        results.append(
                            stats(
                                "page (server side)",
                                server_side(url, cookies, "/project/instances", opts.loads),
                            )
                        )
                        results.append(
                            stats(
                                "rows poll (server side)",
                                server_side(url, cookies, "/project/instances/rows", opts.loads),
                            )
                        )
                        results.append(
                            stats("state change to page", state_changes(page, api, opts.changes))
                        )
                    finally:
                        browser.close()
        finally:
            up.stop()
    return {"machine": machine(), "servers": opts.servers, "results": results}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--servers", type=int, default=1000)
    p.add_argument("--loads", type=int, default=40, help="page loads measured")
    p.add_argument("--changes", type=int, default=6, help="state changes measured")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    opts = p.parse_args()
    doc = run(opts)
    if opts.json:
        print(json.dumps(doc, indent=2))
        return 0
    cells = [["measure", "n", "p50 ms", "p95 ms", "max ms"]]
    cells += [
        [r["measure"], str(r["n"]), str(r["p50_ms"]), str(r["p95_ms"]), str(r["max_ms"])]
        for r in doc["results"]
    ]
    print(f"{doc['servers']} servers, {doc['machine']['date']}, load {doc['machine']['loadavg']}")
    print_table(cells, left=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
