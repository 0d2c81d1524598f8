"""Send and catch marked Ethernet frames inside lab namespaces.

Fidelity tests prove a vDS behaviour by one frame that arrives or does not:
:func:`send` puts a frame carrying a unique marker on an interface (tagged
with an 802.1Q header if asked), :func:`catch` listens on an interface of
another namespace and counts frames that carry the marker.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
import uuid

from pyroute2.netns import popns, pushns

EXPERIMENTAL = 0x88B5  # IEEE 802 local experimental ethertype


def marker() -> bytes:
    return f"ovsphere-{uuid.uuid4().hex}".encode()


def frame(
    src_mac: str, payload: bytes, *, dst_mac: str = "ff:ff:ff:ff:ff:ff", vlan: int | None = None
) -> bytes:
    dst = bytes.fromhex(dst_mac.replace(":", ""))
    src = bytes.fromhex(src_mac.replace(":", ""))
    tag = struct.pack("!HH", 0x8100, vlan) if vlan is not None else b""
    return (dst + src + tag + struct.pack("!H", EXPERIMENTAL) + payload).ljust(60, b"\0")


def _socket(ns: str, ifname: str) -> socket.socket:
    pushns(ns)
    try:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    finally:
        popns()
    sock.bind((ifname, 0))
    return sock


def send(ns: str, ifname: str, data: bytes, count: int = 3) -> None:
    with _socket(ns, ifname) as sock:
        for _ in range(count):
            sock.send(data)
            time.sleep(0.02)


class Catcher:
    """Counts frames with ``mark`` seen on ``ns``/``ifname`` while open."""

    def __init__(self, ns: str, ifname: str, mark: bytes) -> None:
        self.sock = _socket(ns, ifname)
        self.sock.settimeout(0.1)
        self.mark = mark
        self.count = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65535)
            except TimeoutError:
                continue
            if self.mark in data:
                self.count += 1

    def close(self, linger: float = 0.5) -> int:
        time.sleep(linger)
        self._stop.set()
        self._thread.join()
        self.sock.close()
        return self.count
