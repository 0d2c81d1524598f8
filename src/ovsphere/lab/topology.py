"""The lab's topology: what ``ovsphere lab up`` builds, validated before anything is.

A YAML file (or the built-in default) is parsed with line numbers kept, then
validated by pydantic; an error names the file, the line and the problem.
Names become parts of namespace and interface names, so they are short and
plain.  See ``examples/`` and ``docs/lab.md``.
"""

from __future__ import annotations

import re
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any, Literal, NoReturn

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ovsphere.errors import ConfigError

NAME = r"^[a-z][a-z0-9-]{0,11}$"
MAC = re.compile(r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NicTopo(_Strict):
    switch: str | None = None  # default: the first switch
    mac: str | None = None

    @field_validator("mac")
    @classmethod
    def _mac(cls, v: str | None) -> str | None:
        if v is not None and not MAC.match(v.lower()):
            raise ValueError(f"{v!r} is not a MAC address like 00:50:56:01:02:03")
        return v.lower() if v else v


class VmTopo(_Strict):
    name: str = Field(pattern=NAME)
    host: str
    nics: list[NicTopo] = Field(default_factory=lambda: [NicTopo()], min_length=1, max_length=10)


class SwitchTopo(_Strict):
    name: str = Field(pattern=NAME)
    portgroup: str = "ovsphere-isolated"
    hosts: list[str] | None = None  # member hosts; default all


class KvmVmTopo(_Strict):
    name: str = Field(pattern=NAME)
    mac: str | None = None


class KvmTopo(_Strict):
    name: str = Field(pattern=NAME)
    vms: list[KvmVmTopo] = Field(default_factory=list)


class OvnTopo(_Strict):
    clustered: Literal[1, 3] = 1  # Raft members per database


class Topology(_Strict):
    name: str = Field(default="lab", pattern=r"^[a-z][a-z0-9]{0,5}$")
    hosts: list[str] = Field(min_length=1, max_length=16)
    switches: list[SwitchTopo] = Field(min_length=1, max_length=4)
    vms: list[VmTopo] = Field(default_factory=list)
    kvm: list[KvmTopo] = Field(default_factory=list)
    ovn: OvnTopo = OvnTopo()
    precopy: float = Field(default=1.0, ge=0, le=60)
    underlay: IPv4Network = IPv4Network("10.77.0.0/24")
    management: IPv4Network = IPv4Network("10.78.0.0/24")
    underlay_mtu: int = Field(default=1600, ge=1280, le=9000)
    # `lab up` starts `ovsphere manager run`; false for a lab bound by hand (LabControl.bind)
    manager: bool = True

    @field_validator("hosts")
    @classmethod
    def _hosts(cls, v: list[str]) -> list[str]:
        for h in v:
            if not re.match(NAME, h):
                raise ValueError(f"host name {h!r} must match {NAME}")
        if len(set(v)) != len(v):
            raise ValueError("host names repeat")
        return v

    def switch_of(self, nic: NicTopo) -> SwitchTopo:
        return next(s for s in self.switches if s.name == (nic.switch or self.switches[0].name))

    def members(self, switch: SwitchTopo) -> list[str]:
        return switch.hosts if switch.hosts is not None else list(self.hosts)


Loc = tuple[str | int, ...]


def reference_error(t: Topology) -> tuple[Loc, str] | None:
    """The first name that refers to nothing, or is used twice, with where it is."""
    seen: dict[str, Loc] = {}
    named: list[tuple[str, Loc]] = [(h, ("hosts", i)) for i, h in enumerate(t.hosts)]
    named += [(v.name, ("vms", i, "name")) for i, v in enumerate(t.vms)]
    for i, k in enumerate(t.kvm):
        named.append((k.name, ("kvm", i, "name")))
        named += [(v.name, ("kvm", i, "vms", j, "name")) for j, v in enumerate(k.vms)]
    for name, loc in named:
        if name in seen:
            return loc, f"name {name!r} is used twice"
        seen[name] = loc
    switches: dict[str, Loc] = {}
    for i, s in enumerate(t.switches):
        if s.name in switches:
            return ("switches", i, "name"), f"switch name {s.name!r} is used twice"
        switches[s.name] = ("switches", i)
        for h in s.hosts or ():
            if h not in t.hosts:
                return ("switches", i, "hosts"), f"switch {s.name} names unknown host {h!r}"
    for i, vm in enumerate(t.vms):
        if vm.host not in t.hosts:
            return ("vms", i, "host"), f"VM {vm.name} is on unknown host {vm.host!r}"
        for j, nic in enumerate(vm.nics):
            sw = nic.switch or t.switches[0].name
            if sw not in switches:
                return ("vms", i, "nics", j, "switch"), f"unknown switch {sw!r}"
            if vm.host not in t.members(t.switch_of(nic)):
                return ("vms", i, "host"), f"host {vm.host} is not a member of switch {sw}"
    if t.underlay.overlaps(t.management):
        return ("management",), "underlay and management networks overlap"
    need = len(t.hosts) + len(t.kvm) + 8
    if t.underlay.num_addresses < need or t.management.num_addresses < need:
        return ("underlay",), "underlay/management networks are too small for the nodes"
    return None


DEFAULT_TOPOLOGY: dict[str, Any] = {
    "name": "lab",
    "hosts": ["esx1", "esx2", "esx3"],
    "switches": [{"name": "dvs0"}],
    "vms": [{"name": f"vm{i}", "host": f"esx{(i - 1) % 3 + 1}"} for i in range(1, 7)],
    "kvm": [{"name": "kvm1", "vms": [{"name": "kvm-vm1"}, {"name": "kvm-vm2"}]}],
}


class _LineLoader(yaml.SafeLoader):
    """Keeps each mapping key's line, to point errors at the file."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    mapping: dict[Any, Any] = loader.construct_mapping(node, deep=True)
    lines = {loader.construct_object(k): k.start_mark.line + 1 for k, _ in node.value}
    mapping["__lines__"] = lines
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _strip(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _strip(v) for k, v in data.items() if k != "__lines__"}
    if isinstance(data, list):
        return [_strip(v) for v in data]
    return data


def _line_of(data: Any, loc: tuple[Any, ...]) -> int | None:
    line = None
    for part in loc:
        if isinstance(data, dict):
            line = data.get("__lines__", {}).get(part, line)
            data = data.get(part)
        elif isinstance(data, list) and isinstance(part, int) and part < len(data):
            data = data[part]
            if isinstance(data, dict) and data.get("__lines__"):
                line = min(data["__lines__"].values())
        else:
            break
    return line


def parse_topology(text: str, source: str = "<topology>") -> Topology:
    try:
        raw = yaml.load(text, Loader=_LineLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        raise ConfigError(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: a topology is a mapping (name:, hosts:, switches: ...)")
    try:
        topo = Topology.model_validate(_strip(raw))
    except ValidationError as exc:
        err = exc.errors()[0]
        _fail(raw, source, tuple(err["loc"]), err["msg"])
    problem = reference_error(topo)
    if problem is not None:
        _fail(raw, source, *problem)
    return topo


def _fail(raw: Any, source: str, loc: tuple[Any, ...], message: str) -> NoReturn:
    line = _line_of(raw, loc)
    where = f"{source}:{line}" if line else source
    field = ".".join(str(p) for p in loc) or "topology"
    raise ConfigError(
        f"{where}: {field}: {message}", fix="see examples/ and docs/lab.md for the topology format"
    )


def load_topology(path: Path | None) -> Topology:
    if path is None:
        return parse_topology(yaml.safe_dump(DEFAULT_TOPOLOGY), "<default topology>")
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read topology {path}: {exc.strerror}") from None
    return parse_topology(text, str(path))
