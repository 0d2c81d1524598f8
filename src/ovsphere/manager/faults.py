"""Named crash points and delays, for the crash-consistency tests and the benchmarks.

The manager calls :func:`point` between the steps of attach, detach and
vMotion.  When ``OVSPHERE_CRASH_AT`` names that point the process dies on the
spot (``os._exit``: no cleanup, no flushing, as a SIGKILL or a power cut
would), so a test can restart the manager and check that the state converges.
Unset, a point costs one dictionary lookup.

``OVSPHERE_DELAY=NAME=SECONDS`` makes :func:`delay` ``NAME`` sleep that long:
``bench/vmotion.py`` holds ``VmMigratedEvent`` back from the manager with it.
"""

from __future__ import annotations

import logging
import os
import time

ENV = "OVSPHERE_CRASH_AT"
DELAY_ENV = "OVSPHERE_DELAY"
#: exit status of a process killed at a crash point (tests tell it from a real failure)
CRASH_EXIT = 86

#: every point, in the order a pass reaches them
POINTS = (
    "attach:after-nic-move",  # the NIC is on the isolated port group, no port yet
    "allocate:after-write",  # logical ports written (VLANs held), dvPorts not yet set
    "pass:after-dvports",  # dvPorts set (or blocked), nodes not yet configured
    "pass:after-nodes",  # patch pairs added/removed, requested-chassis not yet set
    "pass:after-pins",  # requested-chassis set, released ports not yet deleted
    "pass:after-releases",  # released ports deleted, networks not yet deleted
    # the same steps, in the round that pre-arms a vMotion's destination ...
    "vmotion:after-prearm-nodes",  # destination patch added, requested-chassis still src
    "vmotion:after-prearm-pins",  # requested-chassis=src,dst with activation-strategy=rarp
    # ... and in the round that finalizes it
    "vmotion:after-finalize-nodes",  # source patch removed, requested-chassis still src,dst
    "vmotion:after-finalize-pins",  # requested-chassis=dst
)

#: every delay
DELAYS = ("watch:before-migrated",)  # a VmMigratedEvent, before the manager acts on it

log = logging.getLogger(__name__)


def point(name: str) -> None:
    if name not in POINTS:
        raise ValueError(f"unknown crash point {name!r}")
    if os.environ.get(ENV) == name:
        log.warning("crash point %s reached: exiting", name)
        os._exit(CRASH_EXIT)


def delay(name: str) -> None:
    if name not in DELAYS:
        raise ValueError(f"unknown delay {name!r}")
    spec = os.environ.get(DELAY_ENV, "")
    point, _, seconds = spec.partition("=")
    if point == name and seconds:
        log.warning("delay %s: sleeping %s s", name, seconds)
        time.sleep(float(seconds))
