"""This host's agent, built from configuration: `kumo up`'s local agent and `kumo serve
agent` are the same agent. Kept apart from the CLI's modules so an agent process imports
nothing of the API or the database (kumo.runtime says why)."""

from __future__ import annotations

from kumo.agent.drivers import make_volume_backends
from kumo.agent.inventory import override_from
from kumo.agent.network_setup import make_network
from kumo.agent.service import Agent
from kumo.config import Config
from kumo.drivers.hypervisor.base import HypervisorDriver


def build_agent(
    config: Config, api_url: str, credential: str, host_name: str, driver: HypervisorDriver
) -> Agent:
    """The agent with the configured datapath and volume backends; the hypervisor driver
    is made by the caller, which decides whether "auto" may fall back to the fake one."""
    network_driver, network_local = make_network(config)
    return Agent(
        api_url,
        credential,
        config.state_dir,
        host_name,
        config.agent.heartbeat_interval,
        driver=driver,
        force_config_drive=config.compute.force_config_drive,
        inventory_override=override_from(config.agent),
        console_interval=config.agent.console_interval,
        network_driver=network_driver,
        network_local=network_local,
        volume_backends=make_volume_backends(config),
        self_fence_after=config.ha.self_fence_after,
        lease_dir=config.ha.lease_dir,
    )
