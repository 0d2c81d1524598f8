"""``ovsphere manager run``: the reconciler in the foreground."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType
from typing import Annotated

import typer

from ovsphere.cli.context import cli_context, reports_errors
from ovsphere.logging import configure_logging
from ovsphere.manager.service import Manager

app = typer.Typer(help="The manager: binds VM NICs and keeps them bound.", no_args_is_help=True)


@app.command()
@reports_errors
def run(
    ctx: typer.Context,
    log_json: Annotated[bool, typer.Option(help="log one JSON object a line")] = False,
) -> None:
    """Run the manager until SIGTERM or Ctrl-C (one of several stands by on the NB lock)."""
    cli = cli_context(ctx)
    settings = cli.settings()
    # A service logs what it does: INFO at least, whatever -v said.
    level = min(logging.getLogger().getEffectiveLevel(), logging.INFO)
    configure_logging(level=level, json_lines=log_json or None)
    stop = threading.Event()

    def ask_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, ask_stop)
    signal.signal(signal.SIGINT, ask_stop)
    Manager(settings, stop=stop).run()
