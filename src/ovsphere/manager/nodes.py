"""The transport nodes, each kept as the plan says, in parallel.

A :class:`NodePool` holds one OVSDB session per OVS VM (opened on first use,
dropped after an error so the next pass reconnects) and applies every node's
:class:`~ovsphere.transport.model.NodeDesired` from a thread pool: nodes are
independent, so one slow or unreachable node delays nobody else, and its
failure is returned as that node's error instead of stopping the pass.  The
MTU of each node's transport interface is checked after every apply: a
too-small one is an error of that node (OVS would drop oversize frames
silently).  One pass at a time per pool (the reconciler's), so each node is
only ever touched by one thread at once.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ovsphere.config import Settings, TransportNode
from ovsphere.errors import OvsphereError
from ovsphere.transport import NodeConnection, NodeDesired, apply_and_observe, check_mtu

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NodeResult:
    changes: int
    error: str | None


class NodePool:
    def __init__(self, settings: Settings, *, workers: int = 8, timeout: float = 10) -> None:
        self.settings = settings
        self.timeout = timeout
        self._conns: dict[str, NodeConnection] = {}
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="node")

    def _connect(self, name: str, node: TransportNode) -> NodeConnection:
        conn = self._conns.get(name)
        if conn is None:
            tls = self.settings.tls
            conn = NodeConnection(
                node.ovsdb,
                private_key=tls.private_key if tls else None,
                certificate=tls.certificate if tls else None,
                ca_cert=tls.ca_cert if tls else None,
                timeout=self.timeout,
            )
            self._conns[name] = conn
        return conn

    def _apply_one(self, name: str, desired: NodeDesired) -> NodeResult:
        node = self.settings.transport_nodes.get(name)
        if node is None:
            return NodeResult(0, "not a configured transport node")
        try:
            conn = self._connect(name, node)
            actions, observed = apply_and_observe(conn, desired)
            for action in actions:
                log.info("node %s: %s", name, action)
            problems = []
            if desired.transport_interface:
                problems = check_mtu(
                    observed, desired.transport_interface, desired.tunnel_overhead
                )
            return NodeResult(len(actions), "; ".join(p.message for p in problems) or None)
        except OvsphereError as exc:
            log.warning("node %s: %s", name, exc.message)
            self._drop(name)
            return NodeResult(0, exc.message)

    def apply(self, desired: Mapping[str, NodeDesired]) -> dict[str, NodeResult]:
        futures = {name: self._pool.submit(self._apply_one, name, d) for name, d in desired.items()}
        return {name: f.result() for name, f in futures.items()}

    def _drop(self, name: str) -> None:
        conn = self._conns.pop(name, None)
        if conn is not None:
            with contextlib.suppress(OvsphereError):
                conn.close()

    def close(self) -> None:
        for name in list(self._conns):
            self._drop(name)
        self._pool.shutdown(wait=True)
