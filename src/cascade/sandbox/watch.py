"""Whole-job limits that rlimits cannot give: resident memory summed over every process of
the job, and the disk space its scratch directory takes.

rlimits are per process: ``RLIMIT_AS`` caps each process's address space, so a job of
several processes could use ``memory_mb`` times its process count, and ``RLIMIT_FSIZE``
caps each file, not their total. Without a per-job cgroup (which needs a delegated cgroup
v2 hierarchy), the runner samples instead: every ``INTERVAL`` seconds it sums the resident
set of the job's processes from /proc and the size of the scratch directory, and kills
the whole job once either is over its limit. A sample is a bound, not a wall: a job can
go over by what it allocates or writes within one interval before it is killed.

Which processes belong to the job: those of its per-job uid when the runner is root;
else, under bwrap, the descendants of the bwrap process (orphans stay inside its pid
namespace); else (landlock) the members of its session, which its seccomp filter does
not let any process leave. The weak rlimit mode without root has no such handle: its
processes that leave the session with setsid are not counted.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from cascade.sandbox.limits import Limits

INTERVAL = 0.025
_MAX_ENTRIES = 20000  # more files than this in scratch is itself over the limit
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _proc_stats() -> list[tuple[int, int, int, int, int]]:
    """(pid, ppid, session, resident bytes, owner uid) of every process we can see."""
    stats = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            fd = os.open(f"/proc/{entry.name}/stat", os.O_RDONLY)
        except OSError:
            continue
        try:
            data = os.read(fd, 4096)
            owner = os.fstat(fd).st_uid
        except OSError:
            continue
        finally:
            os.close(fd)
        fields = data[data.rfind(b")") + 2 :].split()
        try:
            # After "pid (comm) ": state ppid pgrp session ... rss is the 22nd field.
            stats.append((int(entry.name), int(fields[1]), int(fields[3]), int(fields[21]) * _PAGE, owner))
        except (IndexError, ValueError):
            continue
    return stats


class JobWatch:
    """Samples one job's total memory and disk use (see the module docstring)."""

    def __init__(self, leader: int, mode: str, uid: int | None, scratch: Path, limits: Limits) -> None:
        self.leader, self.mode, self.uid, self.scratch = leader, mode, uid, scratch
        self.memory_bytes = limits.memory_mb * 1024 * 1024
        self.disk_bytes = limits.max_disk_mb * 1024 * 1024
        # time.monotonic() of the next sample: most jobs are over before the first one.
        self.next_check = time.monotonic() + INTERVAL

    def members(self, stats: list[tuple[int, int, int, int, int]]) -> list[tuple[int, int, int, int, int]]:
        if self.uid is not None:
            return [s for s in stats if s[4] == self.uid or s[0] == self.leader]
        if self.mode == "bwrap":
            children: dict[int, list[tuple[int, int, int, int, int]]] = {}
            for stat in stats:
                children.setdefault(stat[1], []).append(stat)
            found, todo = [], [self.leader]
            while todo:
                for stat in children.get(todo.pop(), []):
                    found.append(stat)
                    todo.append(stat[0])
            return found
        return [s for s in stats if s[2] == self.leader]

    def check(self, now: float) -> str | None:
        """``"memory"`` or ``"disk"`` when the job is over a limit, else None."""
        self.next_check = time.monotonic() + INTERVAL
        resident = sum(s[3] for s in self.members(_proc_stats()))
        if resident > self.memory_bytes:
            return "memory"
        if _tree_bytes(self.scratch, _MAX_ENTRIES) > self.disk_bytes:  # a few entries for a normal job
            return "disk"
        return None

    @staticmethod
    def session_members(session: int) -> list[int]:
        """Pids of every process in ``session``."""
        return [s[0] for s in _proc_stats() if s[2] == session]


def _tree_bytes(root: Path, max_entries: int) -> float:
    """Disk blocks used under ``root`` (symlinks not followed); infinite past ``max_entries``."""
    total, seen, todo = 0, 0, [str(root)]
    while todo:
        try:
            with os.scandir(todo.pop()) as entries:
                for entry in entries:
                    seen += 1
                    if seen > max_entries:
                        return float("inf")
                    try:
                        info = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    total += info.st_blocks * 512
                    if entry.is_dir(follow_symlinks=False):
                        todo.append(entry.path)
        except OSError:
            continue
    return total
