"""Memory and CPU, from /proc, every second: the server's RSS and CPU time per process group."""

from __future__ import annotations

import os
import threading

from .records import Run

MACHINE_CORES = len(os.sched_getaffinity(0))  # read before --browser-cpus narrows this process


def _proc_tree() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command name) of every process."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
                name, rest = stat[stat.index("(") + 1: stat.rindex(")")], stat[stat.rindex(")") + 2:].split()
                found[int(entry)] = (int(rest[1]), name)
            except (OSError, ValueError):
                continue
    return found


def _descendants(root: int, tree: dict[int, tuple[int, str]]) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in tree.items():
        children.setdefault(parent, []).append(pid)
    out, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid in tree or pid == root:
            out.add(pid)
            todo.extend(children.get(pid, []))
    return out


def _cpu_and_rss(pid: int) -> tuple[tuple[int, float], int] | None:
    """((start time, CPU seconds), RSS bytes) of one process, None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open(f"/proc/{pid}/statm") as f:
            rss_pages = int(f.read().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[19]), (int(fields[11]) + int(fields[12])) / ticks), rss_pages * os.sysconf("SC_PAGE_SIZE")


def _machine_busy_s() -> float:
    """CPU seconds all cores spent not idle since boot (everyone's work, ours included)."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    return (sum(values) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")


class Sampler(threading.Thread):
    """Every second: server RSS, and CPU seconds per process group (server, chromium, driver)."""

    def __init__(self, server_pid: int, run: Run):
        super().__init__(daemon=True)
        self.server_pid, self.run_record = server_pid, run
        self.memory: list[tuple[float, int]] = []  # (seconds since start, server RSS bytes)
        self.cpu: dict[str, dict[tuple[int, int], float]] = {"server": {}, "chromium": {}, "driver": {}}
        self.machine_start = _machine_busy_s()
        self.machine_s = 0.0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            self.sample()
            self._halt.wait(1.0)

    def stop(self) -> None:
        self._halt.set()
        self.join(5)
        self.sample()

    def sample(self) -> None:
        tree = _proc_tree()
        server = _descendants(self.server_pid, tree)
        ours = _descendants(os.getpid(), tree) - server
        rss = 0
        for group, pids in (("server", server), ("driver", ours)):
            for pid in pids:
                got = _cpu_and_rss(pid)
                if got is None:
                    continue
                (start, cpu), resident = got
                name = "chromium" if group == "driver" and tree[pid][1].startswith("chrom") else group
                self.cpu[name][(pid, start)] = max(cpu, self.cpu[name].get((pid, start), 0.0))
                rss += resident if group == "server" else 0
        self.memory.append((self.run_record.now(), rss))
        self.machine_s = _machine_busy_s() - self.machine_start

    def cpu_seconds(self) -> dict[str, float]:
        return {group: sum(per_pid.values()) for group, per_pid in self.cpu.items()}

    def rss_at(self, seconds: float | None) -> int | None:
        if seconds is None or not self.memory:
            return None
        return min(self.memory, key=lambda m: abs(m[0] - seconds))[1]
