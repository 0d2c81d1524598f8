"""The lab's record of everything it creates, so that ``lab down`` always works.

Every namespace, process and directory is recorded in ``state.json`` in the
lab's state directory *before* it is created (a crash right after creating
something still leaves its record) and the file is rewritten atomically after
each record.  ``down`` reads the record and removes each thing if it is still
there; it never looks for things by pattern.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_ROOT = Path("/run/ovsphere/lab")


def state_root() -> Path:
    return Path(os.environ.get("OVSPHERE_LAB_DIR", DEFAULT_ROOT))


@dataclass
class ProcessRecord:
    name: str  # e.g. "esx1/ovs-vswitchd"
    pid: int
    program: str  # the executable's base name, checked before signalling a PID
    netns: str | None = None


@dataclass
class Record:
    name: str
    namespaces: list[str] = field(default_factory=list)
    processes: list[ProcessRecord] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)


class LabState:
    """The state directory of one lab and its ``state.json``."""

    def __init__(self, name: str, root: Path | None = None) -> None:
        self.name = name
        self.dir = (root or state_root()) / name
        self.path = self.dir / "state.json"
        self._lock = threading.Lock()
        self.record = self._load()

    def _load(self) -> Record:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return Record(self.name)
        procs = [ProcessRecord(**p) for p in data.get("processes", [])]
        return Record(data["name"], data.get("namespaces", []), procs, data.get("info", {}))

    @property
    def exists(self) -> bool:
        return self.path.exists()

    def save(self) -> None:
        with self._lock:
            self.dir.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(asdict(self.record), indent=1))
            os.replace(tmp, self.path)

    def add_namespace(self, ns: str) -> None:
        if ns not in self.record.namespaces:
            self.record.namespaces.append(ns)
            self.save()

    def add_process(self, proc: ProcessRecord) -> None:
        self.record.processes.append(proc)
        self.save()

    def set_info(self, **info: Any) -> None:
        self.record.info.update(info)
        self.save()

    def node_dir(self, node: str) -> Path:
        d = self.dir / node
        d.mkdir(parents=True, exist_ok=True)
        return d
