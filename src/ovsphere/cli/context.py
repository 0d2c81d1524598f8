"""What every command shares: settings from flags/env/file, errors -> exit codes.

Commands receive a :class:`CliContext` and call :meth:`CliContext.settings`
when they need settings, so that ``ovsphere vcenter sim`` works without a
vCenter configured.  :func:`reports_errors` is the one place where ovsphere
errors become a message and an exit code.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import typer
from rich.console import Console

from ovsphere.config import Settings, load_settings
from ovsphere.errors import OvsphereError
from ovsphere.logging import configure_logging
from ovsphere.logic.ovs_vms import OvsVmRule

P = ParamSpec("P")
R = TypeVar("R")

console = Console()
err_console = Console(stderr=True)


@dataclass
class CliContext:
    flags: dict[str, Any] = field(default_factory=dict)
    config_file: Path | None = None
    lab: str | None = None  # take vCenter (and the vDS) from this running lab
    _settings: Settings | None = None

    def settings(self) -> Settings:
        if self._settings is None:
            flags = dict(self.flags)
            config_file = self.config_file
            if self.lab:
                flags = {**lab_flags(self.lab), **{k: v for k, v in flags.items() if v}}
                config_file = config_file or lab_config(self.lab)
            self._settings = load_settings(flags, config_file=config_file)
            vc = self._settings.vcenter
            configure_logging(secrets=[vc.password.get_secret_value()] if vc else [])
        return self._settings

    def connection(self) -> Any:
        from ovsphere.vsphere.connection import Connection

        s = self.settings()
        return Connection(s.require_vcenter(), verify_tls=not s.insecure)

    def nb(self) -> Any:
        """An NbClient to the configured OVN northbound DB (close it, or use ``with``)."""
        from ovsphere.ovn.connection import NbClient, TlsFiles

        s = self.settings()
        tls = TlsFiles(s.tls.private_key, s.tls.certificate, s.tls.ca_cert) if s.tls else None
        return NbClient(s.require_nb(), tls=tls)

    def ovs_vm_rule(self) -> OvsVmRule:
        m = self.settings().ovs_vm
        return OvsVmRule(m.name_pattern, m.attribute, m.attribute_value)


def reports_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn an OvsphereError into its message, its fix and its exit code."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except OvsphereError as exc:
            logging.getLogger("ovsphere").debug("command failed", exc_info=True)
            err_console.print(f"[bold red]error:[/] {exc.message}", highlight=False)
            if exc.fix:
                err_console.print(f"  [bold]fix:[/] {exc.fix}", highlight=False)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            err_console.print("interrupted")
            sys.exit(130)

    return wrapper


def cli_context(ctx: typer.Context) -> CliContext:
    obj = ctx.find_object(CliContext)
    if obj is None:  # a command invoked without the app's callback (tests)
        obj = CliContext()
        ctx.obj = obj
    return obj


def lab_flags(name: str) -> dict[str, Any]:
    """Settings that point at a running lab's vCenter, vDS and isolated port group."""
    from ovsphere.errors import NotFoundError
    from ovsphere.lab.state import LabState
    from ovsphere.lab.up import endpoint

    state = LabState(name)
    if not state.exists or "vcenter_port" not in state.record.info:
        raise NotFoundError(f"no lab named {name!r} is up", fix="run `ovsphere lab up`")
    flags: dict[str, Any] = {"vcenter": endpoint(state), "insecure": True}
    switches = state.record.info["topology"]["switches"]
    if len(switches) == 1:  # with several, the lab's file names each one's port group
        flags["dvs"] = switches[0]["name"]
        flags["portgroup"] = switches[0].get("portgroup") or "ovsphere-isolated"
    return flags


def lab_config(name: str) -> Path | None:
    """The settings file a running lab writes for its manager (NB, SB, transport nodes)."""
    from ovsphere.lab.state import LabState

    path = LabState(name).dir / "ovsphere.toml"
    return path if path.is_file() else None
