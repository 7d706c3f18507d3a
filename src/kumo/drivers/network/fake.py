"""An in-memory network driver with the Linux driver's interface and semantics (same
faults for unsupported types, same idempotence, adoption from its state directory), for
unit tests and hosts where the datapath is not under test."""

from __future__ import annotations

import json
from pathlib import Path

from kumo.drivers.network.base import NetworkDriver, Report, router_fault
from kumo.drivers.network.capabilities import Capabilities
from kumo.drivers.network.inventory import resources
from kumo.drivers.network.netns import NetworkError
from kumo.drivers.network.spec import HostNetworkSpec

VLAN_ABSENT = "fake driver configured without 802.1Q VLAN support"


class FakeNetworkDriver(NetworkDriver):
    name = "fake"

    def __init__(self, state_dir: Path, network_types: tuple[str, ...] | None = None) -> None:
        super().__init__(state_dir)
        types = set(network_types or ("flat", "local", "vxlan", "vlan"))
        features = {t: t in types for t in ("vlan", "vxlan")}
        features["bridge"] = "flat" in types
        features["stateful_security_groups"] = True
        reasons = {
            t: VLAN_ABSENT if t == "vlan" else f"fake: {t} disabled"
            for t in ("vlan", "vxlan")
            if t not in types
        }
        self._caps = Capabilities(features, reasons)
        self.resources: dict[str, str] = {}
        spec = self.adopt()
        if spec is not None:
            self.resources = resources(spec, set(self._caps.network_types))

    def capabilities(self) -> Capabilities:
        return self._caps

    def adopt(self) -> HostNetworkSpec | None:
        try:
            return HostNetworkSpec.from_dict(json.loads((self.state_dir / "spec.json").read_text()))
        except FileNotFoundError:
            return None

    def apply(self, spec: HostNetworkSpec) -> Report:
        problems = spec.validate()
        if problems:
            raise NetworkError("invalid host network spec: " + "; ".join(problems))
        report = Report()
        supported = set(self._caps.network_types)
        for net in spec.networks:
            if net.type not in supported:
                report.faults[net.id] = self._caps.reason(net.type)
        for port in spec.ports:
            if port.network_id in report.faults:
                reason = report.faults[port.network_id]
                report.faults[port.id] = f"binding failed: network {port.network_id}: {reason}"
        bound = {n.id for n in spec.networks if n.id not in report.faults}
        for router in spec.routers:
            fault = router_fault(router, bound)
            if fault:
                report.faults[router.id] = fault
        wanted = resources(spec, supported)
        for key in sorted(wanted):
            if key not in self.resources:
                report.changes.append(f"created {key}")
            elif self.resources[key] != wanted[key]:
                report.changes.append(f"changed {key}")
        report.changes += [f"removed {key}" for key in sorted(set(self.resources) - set(wanted))]
        self.resources = wanted
        self.state_dir.mkdir(parents=True, exist_ok=True)
        (self.state_dir / "spec.json").write_text(json.dumps(spec.to_dict(), sort_keys=True))
        return report

    def teardown(self) -> Report:
        report = Report(changes=[f"removed {key}" for key in sorted(self.resources)])
        self.resources = {}
        (self.state_dir / "spec.json").unlink(missing_ok=True)
        return report
