"""Logging for ovsphere: human lines or one JSON object a line, never a secret.

:class:`Redactor` replaces every known secret (the vCenter password, any
password in a URL) in each record's final text, so that neither our messages
nor a library's can leak a credential into a log.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable

_URL_PASSWORD = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")


class Redactor(logging.Filter):
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def redact(self, text: str) -> str:
        text = _URL_PASSWORD.sub(r"\1***@", text)
        for s in self.secrets:
            text = text.replace(s, "***")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = self.redact(record.getMessage())
        record.msg, record.args = message, None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


class JsonFormatter(logging.Formatter):
    _STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message"}

    def format(self, record: logging.LogRecord) -> str:
        data = {
            # milliseconds: a vMotion's steps are tens of ms apart
            "time": f"{self.formatTime(record, '%Y-%m-%dT%H:%M:%S')}.{int(record.msecs):03d}",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        data.update({k: v for k, v in vars(record).items() if k not in self._STANDARD})
        if record.exc_text:
            data["exception"] = record.exc_text
        return json.dumps(data, default=str)


_handler: logging.Handler | None = None


def configure_logging(
    *, level: int | None = None, json_lines: bool | None = None, secrets: Iterable[str] = ()
) -> None:
    """Install (or update) the one stderr handler; callable more than once."""
    global _handler
    root = logging.getLogger()
    if _handler is None:
        _handler = logging.StreamHandler(sys.stderr)
        _handler.addFilter(Redactor())
        _handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(_handler)
        root.setLevel(logging.WARNING)
    if level is not None:
        root.setLevel(level)
    if json_lines:
        _handler.setFormatter(JsonFormatter())
    for f in _handler.filters:
        if isinstance(f, Redactor):
            f.secrets.extend(s for s in secrets if s and s not in f.secrets)
