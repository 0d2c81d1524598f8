"""Fixtures for tests of the vSphere layer against the extended simulator.

``vc`` is an ovsphere :class:`~ovsphere.vsphere.connection.Connection` to the
function-scoped ``vcsim`` simulator (see :mod:`ovsphere.testing.vcsim`),
logged out on teardown.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from ovsphere.config import VCenterEndpoint
from ovsphere.lab.simulator import Simulator
from ovsphere.vsphere.connection import Connection


def endpoint_for(sim: Simulator, password: str | None = None) -> VCenterEndpoint:
    return VCenterEndpoint(
        host=sim.host,
        port=sim.port,
        user=sim.options.user,
        password=SecretStr(sim.options.password if password is None else password),
    )


def url_for(sim: Simulator) -> str:
    o = sim.options
    return f"https://{o.user}:{o.password}@{sim.host}:{sim.port}/sdk"


@pytest.fixture
def vc(vcsim: Simulator) -> Iterator[Connection]:
    with Connection(endpoint_for(vcsim), verify_tls=False) as conn:
        yield conn


def session_count(conn: Connection) -> int:
    sessions: Any = conn.si.content.sessionManager.sessionList
    return len(sessions or ())
