"""Starting OVS and OVN daemons, each in its own directories (and namespace).

Every node of the lab (an ESX host's proxy switch, an OVS VM, a KVM host,
OVN central) runs its own ovsdb-server, ovs-vswitchd, ovn-controller ... with
its own OVS_RUNDIR/OVS_DBDIR/OVS_LOGDIR under the lab's state directory, so
nothing touches the machine's own /var/run/openvswitch.  Daemons detach and
write a pidfile; the PID is recorded in the lab state before anything else
happens.  The functional tests use the same code without a namespace.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ovsphere.errors import SetupError
from ovsphere.lab.state import LabState, ProcessRecord

OVS_SCHEMA = Path("/usr/share/openvswitch/vswitch.ovsschema")
NB_SCHEMA = Path("/usr/share/ovn/ovn-nb.ovsschema")
SB_SCHEMA = Path("/usr/share/ovn/ovn-sb.ovsschema")
PACKAGES = {
    "ovsdb-server": "openvswitch-switch",
    "ovs-vswitchd": "openvswitch-switch",
    "ovn-northd": "ovn-central",
    "ovn-controller": "ovn-host",
}


def require(program: str) -> str:
    path = shutil.which(program) or shutil.which(program, path="/usr/sbin:/usr/bin:/sbin")
    if path is None:
        pkg = PACKAGES.get(program, program)
        raise SetupError(
            f"{program} is not installed", fix=f"apt-get install {pkg} (scripts/install.sh does it)"
        )
    return path


@dataclass(frozen=True)
class NodeDirs:
    """Where one node's daemons keep sockets, databases and logs."""

    root: Path

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def log(self) -> Path:
        return self.root / "log"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            OVS_RUNDIR=str(self.run),
            OVS_DBDIR=str(self.root),
            OVS_LOGDIR=str(self.log),
            OVS_SYSCONFDIR=str(self.root),
            OVN_RUNDIR=str(self.run),
            OVN_DBDIR=str(self.root),
            OVN_LOGDIR=str(self.log),
            OVN_SYSCONFDIR=str(self.root),
        )
        return env

    def make(self) -> None:
        for d in (self.run, self.log):
            d.mkdir(parents=True, exist_ok=True)


def in_netns(netns: str | None, argv: Sequence[str]) -> list[str]:
    return ["ip", "netns", "exec", netns, *argv] if netns else list(argv)


def run(
    argv: Sequence[str],
    *,
    netns: str | None = None,
    dirs: NodeDirs | None = None,
    timeout: float = 60,
    check: bool = True,
    input: str | None = None,
) -> str:
    """Run a command (in a namespace, with a node's environment); return stdout."""
    result = subprocess.run(
        in_netns(netns, argv),
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dirs.env() if dirs else None,
        input=input,
    )
    if check and result.returncode != 0:
        raise SetupError(
            f"{' '.join(argv[:3])}... failed (exit {result.returncode}): "
            f"{result.stderr.strip()[-800:]}"
        )
    return result.stdout


def wait_for(path: Path, what: str, timeout: float = 20, pid_of: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    delay = 0.005
    while not path.exists():
        if time.monotonic() > deadline:
            raise SetupError(
                f"{what}: {path} did not appear within {timeout:.0f} s",
                fix=f"read the logs next to {path.parent}",
            )
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def spawn(
    name: str,
    program: str,
    args: Sequence[str],
    *,
    dirs: NodeDirs,
    state: LabState | None,
    netns: str | None = None,
    ready: Path | None = None,
    label: str | None = None,
) -> ProcessRecord:
    """Start a detaching OVS/OVN daemon; record its PID; wait until ``ready`` exists.

    ``label`` names its pidfile and log when one node runs the program twice
    (the NB and SB ovsdb-servers).
    """
    dirs.make()
    label = label or program
    pidfile = dirs.run / f"{label}.pid"
    pidfile.unlink(missing_ok=True)
    argv = [
        require(program),
        *args,
        f"--pidfile={pidfile}",
        "--detach",
        f"--log-file={dirs.log / (label + '.log')}",
    ]
    run(argv, netns=netns, dirs=dirs)
    wait_for(pidfile, f"{name} {label}")
    record = ProcessRecord(
        name=f"{name}/{label}", pid=int(pidfile.read_text().strip()), program=program, netns=netns
    )
    if state is not None:
        state.add_process(record)
    if ready is not None:
        wait_for(ready, f"{name} {label}")
    return record


def start_ovs(
    name: str,
    dirs: NodeDirs,
    *,
    state: LabState | None = None,
    netns: str | None = None,
    remotes: Sequence[str] = (),
    dummy: bool = False,
) -> list[ProcessRecord]:
    """ovsdb-server (unix socket ``run/db.sock`` + ``remotes``) and ovs-vswitchd."""
    dirs.make()
    db = dirs.root / "conf.db"
    if not db.exists():
        run([require("ovsdb-tool"), "create", str(db), str(OVS_SCHEMA)])
    sock = dirs.run / "db.sock"
    server = spawn(
        name,
        "ovsdb-server",
        [
            str(db),
            f"--remote=punix:{sock}",
            "--remote=db:Open_vSwitch,Open_vSwitch,manager_options",
            *(f"--remote={r}" for r in remotes),
            f"--unixctl={dirs.run / 'ovsdb-server.ctl'}",
        ],
        dirs=dirs,
        state=state,
        netns=netns,
        ready=sock,
    )
    run(["ovs-vsctl", f"--db=unix:{sock}", "--no-wait", "init"], dirs=dirs)
    extra = ["--enable-dummy=override", "--disable-system"] if dummy else []
    switchd = spawn(
        name,
        "ovs-vswitchd",
        [
            f"unix:{sock}",
            f"--unixctl={dirs.run / 'ovs-vswitchd.ctl'}",
            *extra,
        ],
        dirs=dirs,
        state=state,
        netns=netns,
        ready=dirs.run / "ovs-vswitchd.ctl",
    )
    return [server, switchd]


def vsctl(dirs: NodeDirs, *args: str, timeout: float = 30) -> str:
    return run(
        ["ovs-vsctl", f"--db=unix:{dirs.run / 'db.sock'}", f"--timeout={int(timeout)}", *args],
        dirs=dirs,
        timeout=timeout + 5,
    )


def ofctl(dirs: NodeDirs, *args: str, input: str | None = None) -> str:
    return run(["ovs-ofctl", *args], dirs=dirs, input=input)


def stop(record: ProcessRecord, timeout: float = 5) -> None:
    """Signal a recorded process by PID, if that PID still runs its program."""
    import signal

    if not is_running(record):
        return
    os.kill(record.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and is_running(record):
        time.sleep(0.02)
    if is_running(record):
        os.kill(record.pid, signal.SIGKILL)


def is_running(record: ProcessRecord) -> bool:
    """True when ``record.pid`` is alive and still the program we started."""
    try:
        comm = Path(f"/proc/{record.pid}/comm").read_text().strip()
        stat = Path(f"/proc/{record.pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    if stat.rsplit(")", 1)[-1].split()[0] == "Z":
        return False
    # /proc/PID/comm holds at most 15 characters of the program name.
    return comm == record.program[:15]

