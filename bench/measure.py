"""Shared by bench/compare.py and bench/scaling.py: run a command, measure wall time and peak memory.

Peak memory is the child's maximum resident set size as the kernel reports it to os.wait4 (what
`/usr/bin/time -v` prints as "Maximum resident set size"): the largest RSS any single process of the
child's tree reached, threads included. CPU seconds (user + system) are reported beside wall seconds because
on a shared machine the wall time mostly measures the other jobs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".gif", ".heic"}


@dataclass
class Measured:
    returncode: int  # -9 when killed for running past its timeout
    seconds: float  # wall clock
    cpu_seconds: float  # user + system CPU of the child and its waited-for descendants
    peak_rss_mb: float
    timed_out: bool


def run_measured(
    command: list[str], *, log: Path, env: dict | None = None, timeout: float | None = None
) -> Measured:
    """Run command with stdout+stderr to log; wall seconds and peak RSS of its process tree."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        timed_out = False
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if timeout is not None and time.perf_counter() - start > timeout:
                timed_out = True
                os.killpg(proc.pid, signal.SIGKILL)
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
        seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)  # tell Popen we reaped it
    cpu = usage.ru_utime + usage.ru_stime
    return Measured(proc.returncode, seconds, cpu, usage.ru_maxrss / 1024, timed_out)


def count_images(folder: Path) -> int:
    """Image files under folder, by suffix (the datasets here hold only images)."""
    return sum(1 for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def tail(path: Path, lines: int = 15) -> str:
    """Last lines of a log file, for error messages."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
