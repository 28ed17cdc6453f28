"""What every test-bed service shares: a working directory it creates unless given one (and
removes after a clean stop), the supervised processes it stops, and use as a context manager
(on an exception the directory is kept for the logs)."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Self

from .process import ManagedProcess


@dataclass
class Server:
    """``workdir``: where the service keeps its data and logs (a fresh temporary directory if ``None``)."""

    workdir: Path | None = None
    _owns_workdir: bool = field(default=False, init=False, repr=False)
    #: prefix of the temporary directory made when no ``workdir`` is given
    workdir_prefix: ClassVar[str] = "cha-"
    #: attributes holding this service's processes, in the order they are stopped
    processes: ClassVar[tuple[str, ...]] = ("_process",)

    def start(self) -> Self:
        raise NotImplementedError

    def make_workdir(self) -> Path:
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix=self.workdir_prefix))
            self._owns_workdir = True
        self.workdir.mkdir(parents=True, exist_ok=True)
        return self.workdir

    @property
    def pids(self) -> list[int]:
        """Process ids of the running service processes (each leads its own process group)."""
        procs: list[ManagedProcess | None] = [getattr(self, attr) for attr in self.processes]
        return [p.pid for p in procs if p is not None and p.pid is not None]

    def stop(self, *, keep_workdir: bool = False) -> None:
        """Stop the processes; remove the workdir this service made unless ``keep_workdir``."""
        for attr in self.processes:
            process: ManagedProcess | None = getattr(self, attr)
            if process is not None:
                process.stop()
                setattr(self, attr, None)
        self.stopped()
        if self._owns_workdir and not keep_workdir and self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def stopped(self) -> None:
        """Forget what the stopped processes served (clients, connections); nothing by default."""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop(keep_workdir=exc is not None)
