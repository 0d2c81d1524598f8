"""Settings: command-line flags, then the environment, then a TOML file.

Every setting is validated by pydantic once, here, at the edge; a bad value
becomes a :class:`~ovsphere.errors.ConfigError` that names the setting, where
the value came from (flag, variable or file) and what is expected.  The
vCenter password is a ``SecretStr``: it never appears in a repr, a log line
or an error message (``tests/unit/test_config.py`` and the functional tests
grep for it).

File lookup: ``--config PATH``, else ``$OVSPHERE_CONFIG``, else
``./ovsphere.toml`` when present.  See ``docs/configuration.md``.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from ovsphere.errors import ConfigError
from ovsphere.model import VLAN_MAX, VlanRange

DEFAULT_PORTGROUP = "ovsphere-isolated"

# environment variable -> dotted setting name
ENVIRONMENT: dict[str, str] = {
    "OVSPHERE_VCENTER": "vcenter",
    "OVSPHERE_VCENTER_PASSWORD": "vcenter_password",
    "OVSPHERE_INSECURE": "insecure",
    "OVSPHERE_DVS": "dvs",
    "OVSPHERE_PORTGROUP": "portgroup",
    "OVSPHERE_NB": "nb",
    "OVSPHERE_SB": "sb",
    "OVSPHERE_MANAGER_SB": "manager_sb",
}


class VCenterEndpoint(BaseModel):
    """Where vCenter is and how to log in."""

    model_config = ConfigDict(frozen=True)

    host: str
    port: int = 443
    path: str = "/sdk"
    user: str
    password: SecretStr

    @property
    def url(self) -> str:
        """The URL without credentials: safe to print."""
        return f"https://{self.host}:{self.port}{self.path}"


def parse_vcenter_url(text: str, password: str | None = None) -> VCenterEndpoint:
    """``https://user:pass@host:port/sdk`` -> endpoint; raises ValueError."""
    parts = urlsplit(text)
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError("expected https://USER:PASSWORD@HOST[:PORT]/sdk")
    if not parts.username:
        raise ValueError("the URL names no user: expected https://USER:PASSWORD@HOST[:PORT]/sdk")
    secret = unquote(parts.password) if parts.password else password
    if not secret:
        raise ValueError(
            "the URL carries no password: put it in the URL or in OVSPHERE_VCENTER_PASSWORD"
        )
    try:
        port = parts.port or 443
    except ValueError as exc:  # urllib's message names the bad port
        raise ValueError(f"bad port: {exc}") from None
    return VCenterEndpoint(
        host=parts.hostname,
        port=port,
        path=parts.path or "/sdk",
        user=unquote(parts.username),
        password=SecretStr(secret),
    )


def parse_vlan_ranges(text: str) -> tuple[VlanRange, ...]:
    """``"0-4094"`` or ``"100-199,300"`` -> ranges; raises ValueError."""
    ranges = []
    for item in (p.strip() for p in text.split(",")):
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", item)
        if not m:
            raise ValueError(f"{item!r} is not a VLAN or a VLAN range like 100-199")
        start = int(m.group(1))
        end = int(m.group(2) or start)
        if not 0 <= start <= end <= VLAN_MAX:
            raise ValueError(f"{item!r} is not within 0-{VLAN_MAX} (start <= end)")
        ranges.append(VlanRange(start, end))
    return tuple(sorted(ranges))


class OvsVmMatch(BaseModel):
    """How OVS VMs are recognised: by name, by a custom attribute, or both."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name_pattern: str | None = r"^ovs-"
    attribute: str | None = "ovsphere.role"
    attribute_value: str = "ovs-vm"

    @field_validator("name_pattern")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a regular expression: {exc}") from None
        return value


class TlsSettings(BaseModel):
    """Key, certificate and CA for ``ssl:`` remotes (the NB and the transport nodes)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    private_key: Path
    certificate: Path
    ca_cert: Path


class TransportNode(BaseModel):
    """How the manager reaches one OVS VM and what its ovn-controller is told."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ovsdb: str  # unix:/path, tcp:IP:PORT or ssl:IP:PORT of the OVS VM's ovsdb-server
    encap_ip: str  # the tunnel endpoint's address (on the transport NIC)
    system_id: str | None = None  # the chassis name; default: the OVS VM's name
    encap_type: Literal["geneve", "vxlan"] | None = None  # default: the global encap_type
    bridge_mappings: dict[str, str] = Field(default_factory=dict)  # physnet -> bridge

    @field_validator("ovsdb")
    @classmethod
    def _remote(cls, value: str) -> str:
        if not re.fullmatch(r"(unix:/\S+|(tcp|ssl):[^\s:]+:\d+)", value):
            raise ValueError(f"{value!r} is not unix:/PATH, tcp:IP:PORT or ssl:IP:PORT")
        return value

    @field_validator("encap_ip")
    @classmethod
    def _ip(cls, value: str) -> str:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address") from None
        return value


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    vcenter: VCenterEndpoint | None = None
    insecure: bool = False
    dvs: str | None = None
    portgroup: str = DEFAULT_PORTGROUP
    min_ports: int = Field(default=64, ge=1, le=8192)
    trunk: tuple[VlanRange, ...] = (VlanRange(0, VLAN_MAX),)
    ovs_vm: OvsVmMatch = OvsVmMatch()
    nb: str | None = None
    sb: str | None = None  # ovn-remote given to every transport node's ovn-controller
    # the SB as the manager reaches it (read only, to see vMotions complete); default: sb
    manager_sb: str | None = None
    tls: TlsSettings | None = None
    reserved_vlans: tuple[VlanRange, ...] = ()
    encap_type: Literal["geneve", "vxlan"] = "geneve"
    transport_interface: str = "br-phy"  # the tunnel endpoint's interface on each OVS VM
    transport_mtu: int = Field(default=1600, ge=576, le=9216)
    resync_interval: float = Field(default=30.0, gt=0)
    transport_nodes: dict[str, TransportNode] = Field(default_factory=dict)
    # vDS name -> its isolated port group, when they are not all named `portgroup`
    isolated: dict[str, str] = Field(default_factory=dict)

    @field_validator("trunk", "reserved_vlans", mode="before")
    @classmethod
    def _trunk(cls, value: Any) -> Any:
        return parse_vlan_ranges(value) if isinstance(value, str) else value

    def require_nb(self) -> str:
        if not self.nb:
            raise ConfigError(
                "no OVN northbound DB is configured",
                fix="pass --nb tcp:IP:6641, set OVSPHERE_NB, or put nb = \"...\" in ovsphere.toml",
            )
        return self.nb

    def require_vcenter(self) -> VCenterEndpoint:
        if self.vcenter is None:
            raise ConfigError(
                "no vCenter is configured",
                fix="pass --vcenter https://USER:PASSWORD@HOST/sdk, set OVSPHERE_VCENTER, "
                'or put vcenter = "..." in ovsphere.toml',
            )
        return self.vcenter


def _read_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(
            f"configuration file {path} does not exist", fix="check --config"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"configuration file {path} is not valid TOML: {exc}") from None


def load_settings(
    flags: Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    config_file: Path | None = None,
) -> Settings:
    """Merge flags over environment over file over defaults, then validate."""
    environ = os.environ if environ is None else environ
    layers: list[tuple[str, dict[str, Any]]] = []

    path = config_file or (
        Path(environ["OVSPHERE_CONFIG"]) if environ.get("OVSPHERE_CONFIG") else None
    )
    if path is None and Path("ovsphere.toml").is_file():
        path = Path("ovsphere.toml")
    if path is not None:
        layers.append((f"file {path}", _read_file(path)))
    env_values = {name: environ[var] for var, name in ENVIRONMENT.items() if environ.get(var)}
    layers.append(("environment", env_values))
    layers.append(("flag", {k: v for k, v in (flags or {}).items() if v is not None}))

    merged: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for source, values in layers:
        for key, value in values.items():
            merged[key] = value
            origin[key] = source

    password = merged.pop("vcenter_password", None)
    origin.pop("vcenter_password", None)
    if isinstance(merged.get("vcenter"), str):
        try:
            merged["vcenter"] = parse_vcenter_url(merged["vcenter"], password)
        except ValueError as exc:
            raise ConfigError(f"setting 'vcenter' ({_where('vcenter', origin)}): {exc}") from None
    try:
        return Settings.model_validate(merged)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = ".".join(str(p) for p in first["loc"]) or "settings"
        top = str(first["loc"][0]) if first["loc"] else ""
        raise ConfigError(
            f"setting '{name}' ({_where(top, origin)}): {first['msg']}",
            fix="see docs/configuration.md for every setting and its form",
        ) from None


def _where(key: str, origin: Mapping[str, str]) -> str:
    source = origin.get(key, "default")
    if source == "environment":
        var = next((v for v, n in ENVIRONMENT.items() if n == key), key)
        return f"from environment variable {var}"
    return f"from {source}"
