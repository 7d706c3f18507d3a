"""Ansible's openstack.cloud collection against a real `kumo up`: a playbook that builds a
tenant's stack (key pair, network, subnet, router, security group and rules, server,
floating IP, volume attached) succeeds, run again changes nothing, and the collection's
dynamic inventory finds the server at its floating IP. Idempotency is what Ansible users
rely on, and it breaks on any field the modules compare and kumo returns differently from
OpenStack (a key pair that lost its final newline failed every second run).

Ansible runs from its own venv (.venv-ansible, pinned in tests/e2e/ansible/requirements.txt),
built here on first use with uv (its cache keeps rebuilds fast). A machine that cannot build
it (no network) skips with the reason; under CI=true that is a failure.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import openstack
import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from kumoproc import Cloud, Result, clean_env, run, separate_venv_or_skip, start_cloud

# Two playbook runs of 12 tasks, each task a fresh Python that imports openstacksdk: 40 s
# of CPU, but 116 s at load 8 and 185 s at load 14 on a shared 2-core machine, too close
# to the suite's 300 s default.
pytestmark = [pytest.mark.clients, pytest.mark.slow, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent / "ansible"
REQUIREMENTS = HERE / "requirements.txt"
PLAYBOOK = HERE / "playbook.yml"
VENV = ROOT / ".venv-ansible"
PLAYBOOK_TIMEOUT = 240.0  # one run: 25-50 s here (about 3 s a task, mostly module start-up)
RECAP = re.compile(
    r"^localhost\s+:\s+ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+"
    r"unreachable=(?P<unreachable>\d+)\s+failed=(?P<failed>\d+)",
    re.MULTILINE,
)


@pytest.fixture(scope="module")
def ansible_bin() -> Path:
    return separate_venv_or_skip(VENV, REQUIREMENTS, "Ansible", program="ansible-playbook")


@pytest.fixture(scope="module")
def fake_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    """The fake hypervisor: Ansible sees only the API, and guests would only cost time."""
    running = start_cloud(
        tmp_path_factory.mktemp("kumo-ansible") / "state",
        env=clean_env(KUMO_COMPUTE_HYPERVISOR="fake"),
    )
    try:
        yield running
    finally:
        running.stop()


def _public_key_file(directory: Path) -> Path:
    """An OpenSSH public key as ssh-keygen writes it: one line ending with a newline."""
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    line = key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    path = directory / "id_ed25519.pub"
    path.write_text(line.decode() + " ansible@kumo\n")
    return path


def _recap(result: Result) -> dict[str, int]:
    found = RECAP.findall(result.stdout)
    assert found, (
        f"no PLAY RECAP (exit {result.returncode}):\n{result.stdout[-4000:]}\n{result.stderr}"
    )
    return dict(zip(("ok", "changed", "unreachable", "failed"), map(int, found[-1]), strict=True))


def test_playbook_builds_a_stack_and_a_second_run_changes_nothing(
    ansible_bin: Path, fake_cloud: Cloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_file = _public_key_file(tmp_path)
    inventory = tmp_path / "inventory"
    inventory.write_text(
        f"localhost ansible_connection=local ansible_python_interpreter={ansible_bin}/python\n"
    )
    env = fake_cloud.env(
        ANSIBLE_HOME=str(tmp_path / "ansible-home"),
        ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"),
        ANSIBLE_REMOTE_TMP=str(tmp_path / "ansible-tmp"),
        # Only the collections the pinned `ansible` package bundles, none from ~/.ansible.
        ANSIBLE_COLLECTIONS_PATH=str(tmp_path / "no-collections"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_RETRY_FILES_ENABLED="0",
        ANSIBLE_PIPELINING="1",  # no module files written per task: about 25% faster here
        PYTHONWARNINGS="ignore",
    )
    cmd = [
        str(ansible_bin / "ansible-playbook"),
        "-i",
        str(inventory),
        "-e",
        f"public_key_file={key_file}",
        str(PLAYBOOK),
    ]

    def play(which: str) -> dict[str, int]:
        result = run(cmd, env, timeout=PLAYBOOK_TIMEOUT)
        recap = _recap(result)
        detail = f"{which} run: {recap}\n{result.stdout[-6000:]}\n{result.stderr[-2000:]}"
        assert result.returncode == 0 and recap["failed"] == 0, detail
        assert recap["unreachable"] == 0, detail
        return recap

    tasks = len(yaml.safe_load(PLAYBOOK.read_text())[0]["tasks"])  # each creates something
    first = play("first")
    assert first == {"ok": tasks, "changed": tasks, "unreachable": 0, "failed": 0}, first
    second = play("second")
    assert second == {"ok": tasks, "changed": 0, "unreachable": 0, "failed": 0}, second

    # What the playbook asked for is there, as the API shows it to any other client.
    for name in [k for k in os.environ if k.startswith("OS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(fake_cloud.clouds_yaml))
    conn = openstack.connect(cloud="kumo-demo")
    try:
        assert conn.compute.find_keypair("ans-key").public_key == key_file.read_text()
        server = conn.compute.find_server("ans-server", ignore_missing=False)
        server = conn.compute.get_server(server.id)
        assert server.status == "ACTIVE" and server.key_name == "ans-key"
        assert {sg["name"] for sg in server.security_groups} == {"ans-sg"}
        kinds = {a["OS-EXT-IPS:type"]: a["addr"] for a in server.addresses["ans-net"]}
        assert sorted(kinds) == ["fixed", "floating"], server.addresses
        volume = conn.block_storage.find_volume("ans-volume", ignore_missing=False)
        assert [a["server_id"] for a in volume.attachments] == [server.id]
        router = conn.network.find_router("ans-router", ignore_missing=False)
        gateway = router.external_gateway_info
        assert gateway["external_fixed_ips"][0]["ip_address"] == "172.24.4.100"
    finally:
        conn.close()

    # The collection's dynamic inventory (from the same clouds.yaml) finds the server and
    # reaches it at its floating IP.
    source = tmp_path / "openstack.yml"
    source.write_text(
        "plugin: openstack.cloud.openstack\nonly_clouds: [kumo-demo]\nfail_on_errors: true\n"
    )
    inventory_cmd = [str(ansible_bin / "ansible-inventory"), "-i", str(source)]
    found = run([*inventory_cmd, "--host", "ans-server"], env)
    assert found.returncode == 0, found.stderr
    assert found.json()["ansible_host"] == kinds["floating"]  # type: ignore[index]
