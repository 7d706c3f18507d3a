#!/usr/bin/env python3
"""Tempest compatibility harness: run the unmodified OpenStack Tempest suite against a fresh kumo.

    compat/run                 # compat/tempest-first-target.regex + every test in passing.txt
    compat/run --regex 'tempest\\.api\\.identity'   # a quick subset
    compat/run --update        # also add newly passing tests to compat/passing.txt
    compat/run --keep          # leave the cloud running and the workspace in place
    compat/run --validation-only [--regex R]   # only the pass that SSHes into guests

Two passes, each against its own fresh cloud: the API pass (the in-memory datapath) runs
everything but the tests that log into guests; the validation pass runs those
(VALIDATION_TESTS) on the real datapath with real qemu guests, with tempest inside the cloud's
provider namespace (where floating IPs are reachable) and the API bridged there on loopback
(compat/api_bridge.py). The validation pass needs root and dropbear (kumo-tiny's sshd); a
machine without them skips it and says why, except in CI, where that is an error.

Steps of a pass: make sure .venv-tempest exists; start `kumo --state-dir <tmp> up` on a free
port in its own process group; render compat/tempest.conf.template into a tempest workspace
(compat/workspace/, gitignored); `tempest run`; read per-test results from the workspace's
stestr repository; print `N skipped` then `N passed, N failed`; exit 1 if any test listed in
compat/passing.txt did not pass. The cloud is always stopped at the end (SIGINT, then SIGKILL to
its process group), also on failure and Ctrl-C, unless --keep.

Only the Python standard library is used here, so any python3 can run this file.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

# Services kumo provides so far. Flip one to True when the service lands: tempest then runs
# (instead of skipping) the tests that need it. Never narrow the test selection instead.
SERVICES = {
    "nova": True,
    "glance": True,
    "neutron": True,
    "cinder": True,
}

# Feature switches rendered into tempest.conf; turn on as features land.
FEATURES = {
    "identity_trust": True,  # /v3/OS-TRUST/trusts ([identity-feature-enabled] trust)
}

# Placeholders for resources that do not exist while the services above are off. Once a service
# is on, run.py must create real ones (see create_resources) and these are overwritten.
DUMMY_IMAGE = "00000000-0000-4000-8000-000000000001"
DUMMY_IMAGE_ALT = "00000000-0000-4000-8000-000000000002"
DUMMY_FLAVOR = "00000000-0000-4000-8000-000000000003"
DUMMY_FLAVOR_ALT = "00000000-0000-4000-8000-000000000004"
DUMMY_NETWORK = "00000000-0000-4000-8000-000000000005"

EXCLUDE_REGEX = r"(IpV6|Ipv6|V6Test|object_storage|dashboard|multinode|test_network_basic_ops)"

# Tests that log into the guest over SSH (tempest's [validation]). They run in a second pass,
# against a cloud with the real datapath and from inside its provider namespace (the only
# place that reaches floating IPs); the first pass, on the in-memory datapath, leaves them out.
VALIDATION_TESTS = (
    "tempest.api.compute.servers.test_attach_interfaces.AttachInterfacesUnderV243Test"
    ".test_add_remove_fixed_ip",
    "tempest.api.compute.servers.test_create_server.ServersTestJSON"
    ".test_host_name_is_same_as_server_name",
    "tempest.api.compute.servers.test_create_server.ServersTestJSON"
    ".test_verify_created_server_vcpus",
    "tempest.scenario.test_server_basic_ops.TestServerBasicOps.test_server_basic_ops",
)
VALIDATION_REGEX = "^(?:" + "|".join(re.escape(t) for t in VALIDATION_TESTS) + r")(?:\[|$)"

COMPAT = Path(__file__).resolve().parent
ROOT = COMPAT.parent
TEMPEST_VENV = ROOT / ".venv-tempest"
UV = ROOT / ".tools" / "bin" / "uv"
KUMO = ROOT / ".venv" / "bin" / "kumo"
KUMO_PYTHON = ROOT / ".venv" / "bin" / "python"
API_BRIDGE = COMPAT / "api_bridge.py"
DROPBEAR = Path("/usr/sbin/dropbear")  # kumo-tiny carries it when the host has it
REQUIREMENTS = COMPAT / "requirements.txt"
TEMPLATE = COMPAT / "tempest.conf.template"
REGEX_FILE = COMPAT / "tempest-first-target.regex"
PASSING = COMPAT / "passing.txt"
WORKSPACE = COMPAT / "workspace"

START_TIMEOUT = 120.0  # seconds for kumo to answer GET /identity with 300
STOP_TIMEOUT = 20.0  # seconds after SIGINT before the process group is killed

PASSING_HEADER = """\
# Tempest tests kumo must pass: compat/run exits 1 (and CI fails) if any test listed here
# does not pass. The list only grows: `compat/run --update` appends newly passing tests
# (sorted, deduplicated); never remove a line to make CI green, fix kumo instead.
# One tempest test id per line; the [id-...,smoke] suffix is optional; '#' starts a comment.
"""


def log(msg: str) -> None:
    print(f"compat: {msg}", flush=True)


# --- tempest venv -------------------------------------------------------------------------------


def ensure_tempest_venv() -> Path:
    """The venv with compat/requirements.txt; (re)installed when the requirements changed."""
    python = TEMPEST_VENV / "bin" / "python"
    stamp = TEMPEST_VENV / ".compat-requirements"
    wanted = REQUIREMENTS.read_text()
    installed = python.exists() and (TEMPEST_VENV / "bin" / "tempest").exists()
    if installed and (not stamp.exists() or stamp.read_text() == wanted):
        stamp.write_text(wanted)
        return TEMPEST_VENV / "bin"
    if not UV.exists():
        sys.exit(f"compat: {UV} missing; run `make python-deps` first")
    log(f"installing tempest into {TEMPEST_VENV}")
    if not python.exists():
        subprocess.run(
            [str(UV), "venv", "--quiet", "--python", "3.11", str(TEMPEST_VENV)], check=True
        )
    subprocess.run(
        [
            str(UV),
            "pip",
            "install",
            "--quiet",
            "--python",
            str(python),
            "-r",
            str(REQUIREMENTS),
        ],
        check=True,
    )
    stamp.write_text(wanted)
    return TEMPEST_VENV / "bin"


# --- the cloud ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Cloud:
    """A fresh `kumo up` in its own process group, stopped by stop()."""

    def __init__(self, state_dir: Path, log_path: Path, real_network: bool = False) -> None:
        self.state_dir = state_dir
        self.log_path = log_path
        self.real_network = real_network
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if not KUMO.exists():
            sys.exit(f"compat: {KUMO} missing; run `make python-deps` first")
        env = dict(os.environ, COLUMNS="200", NO_COLOR="1")
        env.pop("KUMO_CONFIG", None)
        if self.real_network:
            # Guest validation logs into real guests, whatever hypervisor the API pass uses.
            env["KUMO_COMPUTE_HYPERVISOR"] = "qemu"
        else:
            # Tempest's API tests run without guest validation: the in-memory datapath keeps
            # the cloud's networks out of the kernel (nothing to clean up after a kill).
            env["KUMO_AGENT_NETWORK_DRIVER"] = "fake"
        # ListUserImagesTest uploads random bytes under every disk format (tempest says so:
        # it "lies about image content"); the compat cloud accepts that data as Glance does
        # with require_image_format_match off, and tempest.conf says so.
        env["KUMO_IMAGES_REQUIRE_FORMAT_MATCH"] = "false"
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen(
                [
                    str(KUMO),
                    "--state-dir",
                    str(self.state_dir),
                    "up",
                    "--listen",
                    f"127.0.0.1:{self.port}",
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # own process group: Ctrl-C goes to us only
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"kumo up exited with {self.proc.returncode}")
            try:
                urllib.request.urlopen(f"{self.url}/identity", timeout=2)
            except urllib.error.HTTPError as exc:
                if exc.code == 300:
                    return
            except OSError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"kumo did not answer GET /identity with 300 in {START_TIMEOUT:.0f}s")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGINT)
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            log(f"kumo did not stop within {STOP_TIMEOUT:.0f}s of SIGINT; killing it")
        except ProcessLookupError:
            pass
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # also whatever it left in its group
        proc.wait()

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


# --- resources tempest needs -------------------------------------------------------------------


def _api(
    cloud: Cloud,
    method: str,
    path: str,
    token: str | None = None,
    body: object = None,
    data: bytes | None = None,
    content_type: str = "application/json",
) -> tuple[dict, object]:
    headers = {"Content-Type": content_type}
    if token:
        headers["X-Auth-Token"] = token
    raw = json.dumps(body).encode() if body is not None else data
    req = urllib.request.Request(cloud.url + path, data=raw, method=method, headers=headers)
    with urllib.request.urlopen(req, timeout=60) as resp:
        text = resp.read()
        return (json.loads(text) if text else {}), resp.headers


def admin_token(cloud: Cloud) -> str:
    password = (cloud.state_dir / "admin-password").read_text().strip()
    auth = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {"name": "admin", "domain": {"id": "default"}, "password": password}
                },
            },
            "scope": {"project": {"name": "admin", "domain": {"id": "default"}}},
        }
    }
    _, headers = _api(cloud, "POST", "/identity/v3/auth/tokens", body=auth)
    return headers["X-Subject-Token"]


def create_images(cloud: Cloud) -> tuple[str, str]:
    """image_ref and image_ref_alt: kumo-tiny when `kumo up` registered it, else small public
    raw images made here (real data, so tempest can download and boot-check them)."""
    token = admin_token(cloud)
    found, _ = _api(cloud, "GET", "/image/v2/images?name=kumo-tiny", token)
    ids = [i["id"] for i in found.get("images", []) if i.get("status") == "active"]
    while len(ids) < 2:
        image, _ = _api(
            cloud,
            "POST",
            "/image/v2/images",
            token,
            body={
                "name": f"compat-image-{len(ids)}",
                "disk_format": "raw",
                "container_format": "bare",
                "visibility": "public",
            },
        )
        _api(
            cloud,
            "PUT",
            f"/image/v2/images/{image['id']}/file",
            token,
            data=b"\0" * (1 << 20),
            content_type="application/octet-stream",
        )
        ids.append(image["id"])
    return ids[0], ids[1]


def create_public_network(cloud: Cloud) -> str:
    """public_network_id: the external network named public (made here if kumo up has none)."""
    token = admin_token(cloud)
    found, _ = _api(cloud, "GET", "/network/v2.0/networks?name=public&router:external=true", token)
    if found.get("networks"):
        return found["networks"][0]["id"]
    net, _ = _api(
        cloud,
        "POST",
        "/network/v2.0/networks",
        token,
        body={
            "network": {
                "name": "public",
                "router:external": True,
                "provider:network_type": "flat",
                "provider:physical_network": "public",
            }
        },
    )
    _api(
        cloud,
        "POST",
        "/network/v2.0/subnets",
        token,
        body={
            "subnet": {
                "network_id": net["network"]["id"],
                "cidr": "172.24.4.0/24",
                "ip_version": 4,
                "enable_dhcp": False,
            }
        },
    )
    return net["network"]["id"]


def network_extensions(cloud: Cloud) -> str:
    """[network-feature-enabled] api_extensions: exactly what the cloud advertises ("all"
    would make tempest expect agent schedulers, metering and DVR)."""
    token = admin_token(cloud)
    found, _ = _api(cloud, "GET", "/network/v2.0/extensions", token)
    return ",".join(e["alias"] for e in found["extensions"])


# --- tempest workspace --------------------------------------------------------------------------


def write_workspace(bin_dir: Path, ws: Path, cloud: Cloud) -> Path:
    if ws.exists():
        shutil.rmtree(ws)
    ws.parent.mkdir(parents=True, exist_ok=True)
    # --workspace-path keeps the registry inside the workspace instead of ~/.tempest.
    subprocess.run(
        [
            str(bin_dir / "tempest"),
            "init",
            "--workspace-path",
            str(ws / "workspace.yaml"),
            "--name",
            f"kumo-compat-{os.getpid()}-{ws.name}",
            str(ws),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    password = (cloud.state_dir / "admin-password").read_text().strip()
    values = {
        "auth_url": f"{cloud.url}/identity/v3",
        "admin_username": "admin",
        "admin_password": password,
        "admin_project_name": "admin",
        "image_ref": DUMMY_IMAGE,
        "image_ref_alt": DUMMY_IMAGE_ALT,
        **(
            dict(zip(("image_ref", "image_ref_alt"), create_images(cloud), strict=True))
            if SERVICES["glance"]
            else {}
        ),
        # kumo up creates m1.tiny (id 1) and m1.small (id 2) on first run.
        "flavor_ref": "1" if SERVICES["nova"] else DUMMY_FLAVOR,
        "flavor_ref_alt": "2" if SERVICES["nova"] else DUMMY_FLAVOR_ALT,
        "public_network_id": create_public_network(cloud) if SERVICES["neutron"] else DUMMY_NETWORK,
        "floating_network_name": "public",
        "compute_min_microversion": "2.1",
        "compute_max_microversion": compute_max_microversion(cloud.url),
        "volume_min_microversion": "3.0",
        "volume_max_microversion": volume_max_microversion(cloud.url),
        "network_api_extensions": network_extensions(cloud) if SERVICES["neutron"] else "all",
        "log_dir": str(ws / "logs"),
        "lock_path": str(ws / "tempest_lock"),
    }
    values.update({name: str(on).lower() for name, on in FEATURES.items()})
    # os-interface needs ports: it comes with the network service.
    values["interface_attach"] = str(SERVICES["neutron"]).lower()
    values.update({f"{name}_available": str(on).lower() for name, on in SERVICES.items()})
    values["run_validation"] = str(cloud.real_network).lower()
    conf = ws / "etc" / "tempest.conf"
    conf.write_text(TEMPLATE.read_text().format(**values))
    return conf


def compute_max_microversion(url: str) -> str:
    """What the cloud advertises: tempest then runs exactly the microversion tests it can."""
    try:
        with urllib.request.urlopen(f"{url}/compute/", timeout=10) as resp:
            versions = json.load(resp)["versions"]
        return next(v["version"] for v in versions if v["id"] == "v2.1")
    except (OSError, ValueError, KeyError, StopIteration):
        return "2.1"


def volume_max_microversion(url: str) -> str:
    """What the cloud's block storage advertises (tempest skips what lies above it)."""
    try:
        with urllib.request.urlopen(f"{url}/volume/v3/", timeout=10) as resp:
            return str(json.load(resp)["versions"][0]["version"])
    except (OSError, ValueError, KeyError, IndexError):
        return "3.0"


# --- results ------------------------------------------------------------------------------------


def strip_attrs(test_id: str) -> str:
    """tempest.x.Y.test_z[id-...,smoke] -> tempest.x.Y.test_z"""
    return re.sub(r"\[.*\]$", "", test_id.strip())


def read_results(bin_dir: Path, ws: Path) -> dict[str, str]:
    """{test id: status} from the workspace's last stestr run (success, fail, skip, ...)."""
    subunit = subprocess.run(
        [str(bin_dir / "stestr"), "last", "--subunit"], cwd=ws, capture_output=True, check=False
    ).stdout
    (ws / "last.subunit").write_bytes(subunit)
    rows = subprocess.run(
        [str(bin_dir / "subunit2csv")], input=subunit, capture_output=True, check=False
    ).stdout.decode(errors="replace")
    results: dict[str, str] = {}
    order = {"fail": 4, "uxsuccess": 3, "success": 2, "xfail": 2, "skip": 1}
    for row in csv.DictReader(io.StringIO(rows)):
        test, status = row.get("test") or "", row.get("status") or ""
        if not test.startswith("tempest.") and "setUpClass" not in test:
            continue
        # A test reported twice (e.g. a class fixture) keeps its worst outcome.
        if order.get(status, 4) >= order.get(results.get(test, ""), 0):
            results[test] = status
    return results


def read_passing() -> list[str]:
    if not PASSING.exists():
        return []
    ids = []
    for line in PASSING.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            ids.append(line)
    return ids


def default_regex() -> str:
    """The first-target selection plus every test in passing.txt (the list may outgrow it)."""
    regex = f"(?:{REGEX_FILE.read_text().strip()})"
    names = sorted({strip_attrs(t) for t in read_passing()})
    if names:
        regex += "|(?:^(?:" + "|".join(re.escape(n) for n in names) + r")(?:\[|$))"
    return regex


def update_passing(passed: list[str]) -> int:
    existing = read_passing()
    known = {strip_attrs(t) for t in existing}
    new = sorted({t for t in passed if strip_attrs(t) not in known})
    if new:
        body = sorted(set(existing) | set(new))
        PASSING.write_text(PASSING_HEADER + "".join(f"{t}\n" for t in body))
    return len(new)


# --- main ---------------------------------------------------------------------------------------


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_group(cmd: list[str], cwd: Path, env: dict[str, str]) -> int:
    """Run cmd in its own process group; on Ctrl-C/SIGTERM stop the whole group (stestr workers)."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, start_new_session=True)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        for sig, wait in ((signal.SIGINT, 10.0), (signal.SIGKILL, None)):
            try:
                os.killpg(proc.pid, sig)
                proc.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
            except ProcessLookupError:
                break
        raise


class Pass:
    """One tempest run against its own fresh cloud."""

    def __init__(self, name: str, regex: str, exclude: str, workspace: Path, validation: bool):
        self.name = name
        self.regex = regex
        self.exclude = exclude
        self.workspace = workspace
        self.validation = validation  # real datapath, SSH into guests, tempest in the provider ns
        self.seconds = 0.0


def validation_unavailable() -> str | None:
    """Why the validation pass cannot run on this machine, or None."""
    if os.geteuid() != 0:
        return "the real datapath needs root"
    if not DROPBEAR.exists():
        return f"{DROPBEAR} missing: kumo-tiny has no SSH without it (make system-deps)"
    return None


@contextlib.contextmanager
def api_bridge(cloud: Cloud) -> Iterator[str]:
    """The cloud's API at the same URL inside its provider namespace; yields the namespace."""
    proc = subprocess.Popen(
        [str(KUMO_PYTHON), str(API_BRIDGE), str(cloud.state_dir), str(cloud.port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline().split() if proc.stdout else []
        if line[:1] != ["ready"] or len(line) != 2:
            raise RuntimeError(f"api bridge did not start (exit {proc.poll()})")
        yield line[1]
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def clean_up_datapath(cloud: Cloud) -> None:
    """What a real-datapath cloud leaves after its process group is gone: its guests' qemu
    (daemonized, so in their own session) and its namespaces, bridges and dnsmasq."""
    marker = str(cloud.state_dir).encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and b"qemu-system" in argv[0] and any(marker in a for a in argv):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(entry.name), signal.SIGKILL)
    result = subprocess.run(
        [str(KUMO), "--state-dir", str(cloud.state_dir), "network", "teardown"],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        log(f"network teardown of {cloud.state_dir} failed: {result.stderr.strip()}")


def run_pass(bin_dir: Path, run: Pass, concurrency: int, keep: bool) -> dict[str, str]:
    """Start a cloud, run tempest against it, stop the cloud; the per-test results."""
    started = time.monotonic()
    ws = run.workspace
    state_dir = Path(tempfile.mkdtemp(prefix=f"kumo-compat-{run.name}-"))
    ws.mkdir(parents=True, exist_ok=True)
    cloud = Cloud(state_dir, state_dir / "kumo-up.log", real_network=run.validation)
    try:
        try:
            cloud.start()
        except RuntimeError as exc:
            log(f"error: {exc}\n--- {cloud.log_path} ---\n{cloud.log_tail()}")
            raise SystemExit(2) from None
        log(
            f"{run.name} pass: kumo up at {cloud.url} after {time.monotonic() - started:.0f}s "
            f"(state {state_dir}, log {cloud.log_path})"
        )
        conf = write_workspace(bin_dir, ws, cloud)
        (ws / "kumo-state-dir").write_text(f"{state_dir}\n")
        env = dict(os.environ)
        env.pop("OS_CLOUD", None)
        env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
        cmd = [
            str(bin_dir / "tempest"),
            "run",
            "--config-file",
            str(conf),
            "--concurrency",
            str(concurrency),
            "--regex",
            run.regex,
            "--exclude-regex",
            run.exclude,
        ]
        log(f"{run.name} pass: running tempest " + " ".join(cmd[1:4]) + " ...")
        t0 = time.monotonic()
        if run.validation:
            with api_bridge(cloud) as namespace:
                log(f"{run.name} pass: tempest runs in namespace {namespace}")
                run_group(["ip", "netns", "exec", namespace, *cmd], ws, env)
        else:
            run_group(cmd, ws, env)
        run.seconds = time.monotonic() - t0
        return read_results(bin_dir, ws)
    finally:
        if keep:
            pid = cloud.proc.pid if cloud.proc else 0
            log(
                f"--keep: kumo still running at {cloud.url} (stop it: kill -INT -- -{pid}); "
                f"state {state_dir}; workspace {ws}"
            )
        else:
            cloud.stop()
            if run.validation:
                clean_up_datapath(cloud)
            shutil.rmtree(state_dir, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--regex", help="tempest --regex (default: the first target + compat/passing.txt)"
    )
    parser.add_argument(
        "--update", action="store_true", help="append newly passing tests to compat/passing.txt"
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="leave kumo running and the workspace in place for debugging",
    )
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument(
        "--enable",
        action="append",
        default=[],
        choices=sorted(SERVICES),
        help="treat a service as available for this run (to try it before flipping SERVICES)",
    )
    parser.add_argument(
        "--workspace",
        type=Path,
        default=WORKSPACE,
        help="tempest workspace directory (recreated; default compat/workspace)",
    )
    parser.add_argument(
        "--validation-only",
        action="store_true",
        help="only the validation pass (real datapath, SSH into guests), with --regex if given",
    )
    args = parser.parse_args()
    for service in args.enable:
        SERVICES[service] = True

    # SIGTERM (e.g. CI timeout) takes the same clean-up path as Ctrl-C.
    signal.signal(signal.SIGTERM, _interrupt)

    started = time.monotonic()
    bin_dir = ensure_tempest_venv()
    regex = args.regex or default_regex()
    ws = args.workspace.resolve()
    passes = []
    if not args.validation_only:
        passes.append(Pass("api", regex, f"{EXCLUDE_REGEX}|{VALIDATION_REGEX}", ws, False))
    if args.validation_only or not args.regex:
        why_not = validation_unavailable()
        if why_not is None:
            validation_regex = args.regex if args.validation_only and args.regex else None
            passes.append(
                Pass(
                    "validation",
                    validation_regex or VALIDATION_REGEX,
                    EXCLUDE_REGEX,
                    ws.with_name(ws.name + "-validation"),
                    True,
                )
            )
        elif os.environ.get("CI"):
            log(f"error: the validation pass cannot run in CI: {why_not}")
            return 2
        else:
            log(f"skipping the validation pass (its {len(VALIDATION_TESTS)} tests): {why_not}")
    validating = any(run.validation for run in passes)
    results: dict[str, str] = {}
    try:
        for run in passes:
            results.update(run_pass(bin_dir, run, args.concurrency, args.keep))
    except KeyboardInterrupt:
        log("interrupted")
        return 130

    passed = sorted(t for t, s in results.items() if s in ("success", "xfail"))
    failed = sorted(t for t, s in results.items() if s not in ("success", "xfail", "skip"))
    skipped = sorted(t for t, s in results.items() if s == "skip")
    last = ws / "last-passed.txt"
    ws.mkdir(parents=True, exist_ok=True)
    last.write_text("".join(f"{t}\n" for t in passed))
    (ws / "last-failed.txt").write_text("".join(f"{t}\n" for t in failed))
    (ws / "last-results.json").write_text(json.dumps(results, indent=1, sort_keys=True))

    if failed:
        print("\nfailed:")
        for t in failed:
            print(f"  {t}")
    print(f"\npassing test ids: {last}")
    timings = ", ".join(f"{run.name} {run.seconds:.0f}s" for run in passes)
    print(f"tempest took {timings}; {time.monotonic() - started:.0f}s in all")

    status = 0
    if not results:
        log("error: tempest reported no results")
        status = 1
    passed_names = {strip_attrs(t) for t in passed}
    required = read_passing()
    if not validating:  # this machine cannot run them (said above); CI always does
        required = [t for t in required if not re.search(VALIDATION_REGEX, t)]
    regressed = [t for t in required if strip_attrs(t) not in passed_names]
    if args.regex or args.validation_only:
        # A narrowed run only checks the listed tests that it selected.
        selected = {strip_attrs(t) for t in results}
        patterns = [run.regex for run in passes]
        regressed = [
            t
            for t in regressed
            if strip_attrs(t) in selected or any(re.search(p, t) for p in patterns)
        ]
    if regressed:
        print(f"\n{len(regressed)} test(s) listed in compat/passing.txt did not pass:")
        by_name = {strip_attrs(r): s for r, s in results.items()}
        for t in regressed:
            print(f"  {t}: {by_name.get(strip_attrs(t), 'not run')}")
        status = 1
    if args.update:
        added = update_passing(passed)
        log(f"--update: {added} test(s) added to {PASSING.relative_to(ROOT)}")

    print(f"{len(skipped)} skipped")
    print(f"{len(passed)} passed, {len(failed)} failed")
    return status


if __name__ == "__main__":
    sys.exit(main())
