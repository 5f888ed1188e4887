"""Run `cascade serve` as a child process and find its URL (for scripts, benchmarks, tests).

The child picks a free port (``--port 0``) and announces it on its first stdout line,
``serving NAME on http://HOST:PORT/v1``; that line is the only handshake, so nothing races
for a port. Leaving the ``with`` block terminates the child and waits for it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Mapping, Sequence

from cascade.errors import CascadeError

SERVING_LINE = re.compile(r"^serving (?P<name>.+) on (?P<url>http://\S+/v1)$")


class ServerProcess:
    """``with ServerProcess(model_dir) as server: ... server.base_url ...``

    ``extra_args`` go to `cascade serve` (e.g. ``["--device", "cpu"]``); ``env`` adds to the
    child's environment; ``log`` receives its stderr (default: discarded).
    """

    def __init__(self, model: str | Path, *, name: str | None = None, extra_args: Sequence[str] = (),
                 startup_timeout: float = 120.0, log: IO[str] | None = None,
                 env: Mapping[str, str] | None = None) -> None:
        self.command = [sys.executable, "-m", "cascade.cli", "serve", "--model", str(model), "--port", "0",
                        *(["--name", name] if name else []), *extra_args]
        self.startup_timeout = startup_timeout
        self.log = log
        self.env = None if env is None else {**os.environ, **env}
        self.proc: subprocess.Popen[str] | None = None
        self.base_url = ""
        self.model_name = ""

    def __enter__(self) -> "ServerProcess":
        self.start()
        try:
            return self.wait_ready()
        except BaseException:
            self.stop()
            raise

    def start(self) -> None:
        """Spawn the server; ``wait_ready`` waits for it (other work can happen in between)."""
        self.proc = subprocess.Popen(self.command, stdout=subprocess.PIPE, stderr=self.log or subprocess.DEVNULL,
                                     text=True, env=self.env)

    def wait_ready(self) -> "ServerProcess":
        """Block until the server announces its URL (sets ``base_url`` and ``model_name``)."""
        if self.base_url:
            return self
        line = self._first_line()
        match = SERVING_LINE.match(line.strip())
        if not match:
            self.stop()
            raise CascadeError(f"`cascade serve` did not start (exit code {self.proc.returncode}); "
                               f"its first line was {line.strip()!r}")
        self.model_name, self.base_url = match["name"], match["url"]
        return self

    def _first_line(self) -> str:
        assert self.proc is not None and self.proc.stdout is not None
        box: list[str] = []
        stdout = self.proc.stdout
        # A thread, so a child that hangs before printing cannot hang the caller past the timeout.
        reader = threading.Thread(target=lambda: box.append(stdout.readline()), daemon=True)
        reader.start()
        reader.join(self.startup_timeout)
        return box[0] if box else ""

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def __exit__(self, *exc: object) -> None:
        self.stop()
