"""A 10 ms ping running through an operation (a vMotion): what was lost, and when.

``ping -D -O`` prints a wall-clock stamp on every reply and on every probe
still unanswered when the next goes out, so the outage can be placed against
the lab's own switch-over times (``switchovers.json``, written by the agent).
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise

from ovsphere.errors import PreconditionError
from ovsphere.lab.manual import LabControl

INTERVAL = 0.01
_REPLY = re.compile(r"^\[(\d+\.\d+)\] \d+ bytes from .*icmp_seq=(\d+)", re.MULTILINE)
_SUMMARY = re.compile(r"(\d+) packets transmitted, (\d+) received")


@dataclass(frozen=True)
class Pings:
    sent: int
    received: int
    replies: dict[int, float]  # icmp_seq -> wall-clock time of its reply

    @property
    def lost(self) -> int:
        return self.sent - self.received

    def outage(self) -> tuple[float, float] | None:
        """(last reply before, first reply after) the longest run of lost probes."""
        seqs = sorted(self.replies)
        gaps = [(b - a, a, b) for a, b in pairwise(seqs) if b - a > 1]
        if not gaps:
            return None
        _, a, b = max(gaps)
        return self.replies[a], self.replies[b]

def ping_through(
    lab: LabControl, src: str, dst_ip: str, during: Callable[[], None], *, settle: float = 1.0
) -> Pings:
    """Ping ``dst_ip`` from ``src`` every 10 ms while ``during()`` runs (and ``settle`` s more)."""
    argv = ["ping", "-n", "-D", "-O", "-i", str(INTERVAL), "-W", "1", dst_ip]
    proc = subprocess.Popen(
        ["ip", "netns", "exec", lab.ns(src), *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        time.sleep(0.5)
        during()
        time.sleep(settle)
    finally:
        proc.send_signal(2)  # SIGINT: ping prints its summary
        out, _ = proc.communicate(timeout=10)
    m = _SUMMARY.search(out)
    if not m:
        raise PreconditionError(f"ping printed no summary: {out.strip()[-200:]}")
    replies = {int(seq): float(t) for t, seq in _REPLY.findall(out)}
    return Pings(int(m.group(1)), int(m.group(2)), replies)
