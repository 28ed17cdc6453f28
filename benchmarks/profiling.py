"""Sampling profiles of a benchmark's process under test, with ``py-spy`` when it is installed."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path


def start_profiler(pid: int, out: Path, seconds: float, rate: int = 200) -> subprocess.Popen[bytes] | None:
    """``py-spy record`` of process ``pid`` for ``seconds`` into ``out`` (py-spy's raw format),
    or ``None`` (and a line on stderr) when py-spy is not installed."""
    spy = shutil.which("py-spy")
    if spy is None:
        print("py-spy not installed: no profile", file=sys.stderr, flush=True)
        return None
    args = [spy, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", str(rate)]
    args += ["--format", "raw", "--output", str(out), "--nonblocking"]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _stacks(raw: Path) -> list[tuple[list[str], int]]:
    stacks = []
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if n.isdigit():
            stacks.append((stack.split(";"), int(n)))
    return stacks


def top_frames(raw: Path, limit: int = 12) -> list[tuple[float, str]]:
    """The functions a py-spy ``raw`` profile most often found running (self time, % of the
    samples of all threads)."""
    stacks = _stacks(raw)
    total = sum(n for _, n in stacks)
    counts: dict[str, int] = {}
    for frames, n in stacks:
        counts[frames[-1]] = counts.get(frames[-1], 0) + n
    ranked = sorted(counts.items(), key=lambda kv: -kv[1])[:limit]
    return [(round(100 * n / max(1, total), 1), frame) for frame, n in ranked]


def share_under(raw: Path, needles: dict[str, str]) -> dict[str, float]:
    """For each label, the % of samples whose stack has a frame containing its needle (the time
    spent in that code and in everything it called)."""
    stacks = _stacks(raw)
    total = max(1, sum(n for _, n in stacks))
    return {
        label: round(100 * sum(n for frames, n in stacks if any(needle in f for f in frames)) / total, 1)
        for label, needle in needles.items()
    }
