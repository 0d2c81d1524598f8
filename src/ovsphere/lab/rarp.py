"""The RARP frame ESX sends from a VM's MAC when a vMotion switches over.

One broadcast frame, ethertype 0x8035, opcode 3 (reverse request), sender and
target hardware address the VM's MAC, no protocol addresses.  Switches learn
the MAC's new place from it, and ovn-controller activates a port whose
``activation-strategy`` is ``rarp`` when it sees it.
"""

from __future__ import annotations

import socket
import struct

from pyroute2.netns import popns, pushns

ETH_P_RARP = 0x8035


def rarp_frame(mac: str) -> bytes:
    hw = bytes.fromhex(mac.replace(":", ""))
    header = b"\xff" * 6 + hw + struct.pack("!H", ETH_P_RARP)
    body = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 3) + hw + b"\0" * 4 + hw + b"\0" * 4
    return (header + body).ljust(60, b"\0")


def send_rarp(ns: str, ifname: str, mac: str) -> None:
    """Send the RARP out of ``ifname`` inside namespace ``ns``."""
    pushns(ns)
    try:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    finally:
        popns()
    with sock:
        sock.bind((ifname, 0))
        sock.send(rarp_frame(mac))
