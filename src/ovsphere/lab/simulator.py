"""Build and run the lab's vCenter: VMware's govmomi simulator with ovsphere's additions.

Why this exists: ovsphere's functional tests and the lab need a vCenter, and the
only one that runs on a plain Linux machine is VMware's own simulator (the Go
package ``github.com/vmware/govmomi/simulator``, Debian package
golang-github-vmware-govmomi-dev). It lacks what ovsphere reads and writes on a
real vCenter: distributed ports and ``ReconfigureDVPort_Task``, static port
binding of VM NICs, vMotion with its events, vDS membership. The Go files under
``vcsim/`` add those to the simulator package (``go build -overlay``, nothing
under /usr/share/gocode changes); ``docs/simulator.md`` lists what still differs
from vCenter.

How it is used: :func:`build_simulator` compiles once per content of the Go
sources and Go version and caches the binary; :meth:`Simulator.start` runs one
simulator process on a loopback port and waits until it listens;
:meth:`Simulator.stop` ends that process by its PID. Several test processes may
build at once: each builds in its own directory and renames the result into
place, so a reader sees a whole binary or none. A :class:`Simulator` is not
thread-safe; start and stop it from one thread.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO

from ovsphere.errors import SetupError

__all__ = ["Simulator", "SimulatorOptions", "build_simulator"]

GOPATH = Path("/usr/share/gocode")
SIMULATOR_PACKAGE = GOPATH / "src/github.com/vmware/govmomi/simulator"
SOURCES = Path(__file__).parent / "vcsim"
URL_LINE = re.compile(
    r"^OVSPHERE-VCSIM-URL (https://(\[[0-9a-fA-F:.]+\]|[^:/\s]+):([0-9]+)/sdk)$", re.MULTILINE
)
PASSWORD_ENV = "OVSPHERE_VCSIM_PASSWORD"
APT_GO = "apt-get install -y golang-go"
APT_GOVMOMI = "apt-get install -y golang-github-vmware-govmomi-dev"


@dataclass(frozen=True)
class SimulatorOptions:
    """The inventory and behaviour of one simulator; counts as in govmomi's VPX model."""

    listen: str = "127.0.0.1"
    port: int = 0
    datacenters: int = 1
    clusters: int = 1
    #: hosts per cluster
    hosts: int = 3
    #: standalone hosts per datacenter
    standalone_hosts: int = 0
    #: VMs per resource pool (each cluster's and each standalone host's)
    vms: int = 2
    #: distributed port groups per datacenter, all on one vDS
    portgroups: int = 1
    user: str = "ovsphere"
    #: never shown, not even in a pytest failure report
    password: str = field(default="ovsphere", repr=False)
    #: seconds a vMotion's pre-copy lasts, between its two events
    precopy: float = 1.0

    def arguments(self) -> list[str]:
        """The command line flags; the password travels in the environment."""
        return [
            f"-listen={self.listen}:{self.port}",
            f"-user={self.user}",
            f"-datacenters={self.datacenters}",
            f"-clusters={self.clusters}",
            f"-hosts={self.hosts}",
            f"-standalone-hosts={self.standalone_hosts}",
            f"-vms={self.vms}",
            f"-portgroups={self.portgroups}",
            f"-precopy={self.precopy}s",
        ]


def _sources() -> list[Path]:
    files = sorted(SOURCES.glob("ovsphere_*.go"))
    main = SOURCES / "main.go"
    if not main.is_file() or not files:
        raise SetupError(
            f"the simulator's Go sources are missing from {SOURCES}",
            fix="reinstall ovsphere: the vcsim/*.go files are package data of ovsphere.lab",
        )
    return [main, *files]


def _go() -> str:
    go = shutil.which("go")
    if go is None:
        raise SetupError("the Go compiler (go) is not installed", fix=APT_GO)
    if not SIMULATOR_PACKAGE.is_dir():
        raise SetupError(
            f"govmomi's simulator sources are not installed ({SIMULATOR_PACKAGE} is missing)",
            fix=APT_GOVMOMI,
        )
    return go


def _digest(go: str, sources: list[Path]) -> str:
    version = subprocess.run(
        [go, "version"], capture_output=True, text=True, check=False, timeout=60
    ).stdout.strip()
    h = hashlib.sha256(version.encode())
    for path in sources:
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    # A new govmomi package must rebuild too.
    for path in sorted(SIMULATOR_PACKAGE.rglob("*.go")):
        stat = path.stat()
        h.update(f"{path}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return h.hexdigest()[:20]


def default_cache_dir() -> Path:
    """``$OVSPHERE_CACHE/vcsim``, else ``~/.cache/ovsphere/vcsim``."""
    base = os.environ.get("OVSPHERE_CACHE")
    root = Path(base) if base else Path.home() / ".cache" / "ovsphere"
    return root / "vcsim"


def build_simulator(cache_dir: Path | None = None) -> Path:
    """Return the path of the simulator binary, compiling it if this content was never built."""
    go = _go()
    sources = _sources()
    cache = cache_dir if cache_dir is not None else default_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    binary = cache / f"vcsim-{_digest(go, sources)}"
    if binary.is_file() and os.access(binary, os.X_OK):
        return binary

    with tempfile.TemporaryDirectory(prefix="build-", dir=cache) as tmp:
        work = Path(tmp)
        (work / "tmp").mkdir()
        overlay: dict[str, str] = {}
        for path in sources:
            copy = work / path.name
            shutil.copyfile(path, copy)
            if path.name != "main.go":
                overlay[str(SIMULATOR_PACKAGE / path.name)] = str(copy)
        (work / "overlay.json").write_text(json.dumps({"Replace": overlay}))
        env = {
            **os.environ,
            "GO111MODULE": "off",
            "GOPATH": str(GOPATH),
            "GOCACHE": str(cache / "gocache"),
            "GOTMPDIR": str(work / "tmp"),
            "GOFLAGS": "",
            "CGO_ENABLED": "0",
        }
        built = work / "vcsim"
        result = subprocess.run(
            [go, "build", "-overlay", str(work / "overlay.json"), "-o", str(built), "main.go"],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=900,
        )
        if result.returncode != 0 or not built.is_file():
            raise SetupError(
                "building the vCenter simulator failed:\n"
                + (result.stdout + result.stderr).strip(),
                fix=f"go's output names the file and line; the sources are in {SOURCES}",
            )
        os.replace(built, binary)
    return binary


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


class Simulator:
    """One running simulator process, serving ``url``; stop it with :meth:`stop`."""

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        url: str,
        options: SimulatorOptions,
        log_path: Path,
        log: IO[bytes],
    ) -> None:
        match = URL_LINE.match(f"OVSPHERE-VCSIM-URL {url}")
        if match is None:
            raise ValueError(f"not a simulator URL: {url}")
        self.url = url
        self.host = match.group(2).strip("[]")
        self.port = int(match.group(3))
        self.pid = process.pid
        self.options = options
        self.log_path = log_path
        self._process = process
        self._log = log

    @classmethod
    def start(
        cls,
        options: SimulatorOptions,
        *,
        binary: Path | None = None,
        log_path: Path | None = None,
        timeout: float = 60,
    ) -> Simulator:
        """Start a simulator and return once it listens; its output goes to ``log_path``."""
        exe = binary if binary is not None else build_simulator()
        if log_path is None:
            fd, name = tempfile.mkstemp(prefix="ovsphere-vcsim-", suffix=".log")
            os.close(fd)
            log_path = Path(name)
        log = open(log_path, "ab")  # noqa: SIM115 - closed by stop()
        offset = log.tell()
        env = {**os.environ, PASSWORD_ENV: options.password}
        try:
            process = subprocess.Popen(
                [str(exe), *options.arguments()],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        except OSError as e:
            log.close()
            raise SetupError(
                f"cannot run the vCenter simulator {exe}: {e}",
                fix="rebuild it with build_simulator()",
            ) from e

        try:
            url = cls._wait_for_url(process, log_path, offset, timeout)
        except BaseException:
            cls._end(process, 5)
            log.close()
            raise
        return cls(process, url, options, log_path, log)

    @staticmethod
    def _wait_for_url(
        process: subprocess.Popen[bytes], log_path: Path, offset: int, timeout: float
    ) -> str:
        deadline = time.monotonic() + timeout
        while True:
            with open(log_path, "rb") as f:
                f.seek(offset)
                match = URL_LINE.search(f.read().decode(errors="replace"))
            if match is not None:
                return match.group(1)
            code = process.poll()
            if code is not None or time.monotonic() > deadline:
                what = (
                    f"exited with code {code}"
                    if code is not None
                    else f"did not listen within {timeout} s"
                )
                raise SetupError(
                    f"the vCenter simulator {what}; the end of its log:\n{_tail(log_path)}",
                    fix=f"read the whole log in {log_path}",
                )
            time.sleep(0.05)

    @staticmethod
    def _end(process: subprocess.Popen[bytes], timeout: float) -> None:
        if process.poll() is not None:
            return
        try:
            os.kill(process.pid, signal.SIGTERM)
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
        except ProcessLookupError:
            process.wait()

    def wait(self) -> int:
        """Block until the simulator process ends; return its exit code."""
        return self._process.wait()

    @property
    def running(self) -> bool:
        return self._process.poll() is None

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM by PID, SIGKILL after ``timeout`` seconds; calling it again does nothing."""
        self._end(self._process, timeout)
        if not self._log.closed:
            self._log.close()

    def __enter__(self) -> Simulator:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"Simulator(url={self.url!r}, pid={self.pid})"
