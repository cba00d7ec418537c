"""The same state before every timed step, and what a step costs.

Before each timed step, bench.py (the parent) calls settle():
  1. sync(): every dirty page is written back, so no step pays for the
     write-back of the one before;
  2. the page cache of the scratch folder's files is dropped: with
     --cache files (the default) by posix_fadvise(DONTNEED) on every file
     there, which any user may do for files they can open; with --cache
     system by writing 1 to /proc/sys/vm/drop_caches, which needs root (and
     also drops the tools' own code pages, which then fault back in during
     the timed step: see tools/bench/README.md); without root it falls back
     to `files` and says so once;
  3. a load's inputs are read once (untimed), so every load starts with its
     own files, and nothing else, in the page cache;
  4. free memory is compacted into whole 2 MiB blocks
     (/proc/sys/vm/compact_memory; root only, said once otherwise).
Then the step's process primes memory (the same for every tool): it
touches, in huge pages, and frees as many bytes as the step will fault in
(CKPT_BENCH_PRIMER_BYTES), right before its clock starts.

StepMeter measures, around the timed part of a peer's step, what
step_meter.h measures for the C++ steps: CPU time, page faults,
/proc/self/io, peak RSS growth; perf_wrap() adds cycles and instructions
where the machine offers hardware counters.
"""
import mmap
import os
import resource
import subprocess
import sys
import tempfile
import time

_said = set()


def _once(message):
    if message not in _said:
        _said.add(message)
        print(message, file=sys.stderr)


def _files_under(path):
    if os.path.isfile(path):
        yield path
        return
    for root, _, files in os.walk(path):
        for name in files:
            yield os.path.join(root, name)


def drop_file_cache(path):
    """posix_fadvise(DONTNEED) on every file under `path` (clean pages go)."""
    for name in _files_under(path):
        try:
            fd = os.open(name, os.O_RDONLY)
        except OSError:
            continue
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def warm(path):
    """Reads every file under `path` once, into the page cache."""
    for name in _files_under(path):
        with open(name, "rb", buffering=0) as f:
            while f.read(16 << 20):
                pass


def settle(scratch, cache_mode, inputs=()):
    """The state before a timed step (see the module's comment)."""
    os.sync()
    if cache_mode != "system" or not _write_knob(
            "/proc/sys/vm/drop_caches",
            "cannot drop the system's page cache ({}); dropping the scratch "
            "folder's files instead (--cache files)"):
        drop_file_cache(scratch)
    for path in inputs:
        warm(path)
    compact_memory()


def compact_memory():
    """Asks the kernel to compact free memory into whole 2 MiB blocks
    (/proc/sys/vm/compact_memory, root only): otherwise whether a step that
    faults in huge pages finds free blocks, or compacts memory itself
    inside its timed part, depends on what ran before it."""
    _write_knob("/proc/sys/vm/compact_memory",
                "cannot compact memory ({}); steps that fault in huge pages "
                "may pay for it (run as root to fix)")


def _write_knob(path, failure):
    """Writes 1 to the kernel knob `path`; False, and `failure` said once
    (with the reason), when this process may not."""
    try:
        with open(path, "w") as f:
            f.write("1\n")
        return True
    except OSError as e:
        _once("bench: " + failure.format(e.strerror))
        return False


def prime_memory():
    """Touches CKPT_BENCH_PRIMER_BYTES of fresh memory, asked for in huge
    pages, then frees it (step_meter.h's prime_memory says why)."""
    n = int(os.environ.get("CKPT_BENCH_PRIMER_BYTES", "0"))
    if n <= 0:
        return
    m = mmap.mmap(-1, n, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    if hasattr(mmap, "MADV_HUGEPAGE"):
        m.madvise(mmap.MADV_HUGEPAGE)
    try:
        import numpy as np
        np.frombuffer(m, dtype=np.uint8)[::mmap.PAGESIZE] = 1
    except ImportError:
        for at in range(0, n, mmap.PAGESIZE):
            m[at] = 1
    m.close()


def _io():
    out = {}
    try:
        with open("/proc/self/io") as f:
            for line in f:
                key, _, value = line.partition(":")
                out[key.strip()] = int(value)
    except OSError:
        pass
    return out


def _peak_rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def _perf_control(command):
    ctl = os.environ.get("CKPT_BENCH_PERF_CTL")
    ack = os.environ.get("CKPT_BENCH_PERF_ACK")
    if not ctl or not ack:
        return
    c = os.open(ctl, os.O_WRONLY)
    a = os.open(ack, os.O_RDONLY)
    try:
        os.write(c, (command + "\n").encode())
        os.read(a, 16)
    finally:
        os.close(c)
        os.close(a)


class StepMeter:
    """start() before the timed part, stop() after: a dict of its costs."""

    def start(self):
        prime_memory()
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        self.rss = _peak_rss()
        self.io = _io()
        self.usage = resource.getrusage(resource.RUSAGE_SELF)
        _perf_control("enable")
        self.t = time.perf_counter()

    def stop(self):
        seconds = time.perf_counter() - self.t
        _perf_control("disable")
        u = resource.getrusage(resource.RUSAGE_SELF)
        io = _io()
        out = {"seconds": seconds,
               "cpu_user_seconds": u.ru_utime - self.usage.ru_utime,
               "cpu_system_seconds": u.ru_stime - self.usage.ru_stime,
               "minor_faults": u.ru_minflt - self.usage.ru_minflt,
               "major_faults": u.ru_majflt - self.usage.ru_majflt}
        for key in ("read_bytes", "write_bytes", "rchar", "wchar"):
            out[key] = io.get(key, 0) - self.io.get(key, 0)
        out["rss_extra_bytes"] = _peak_rss() - self.rss
        return out


# ------------------------------------------------- hardware counters

# CKPT_BENCH_PERF_EVENTS replaces them (e.g. task-clock, a software
# event every machine has, to check the mechanism where cycles are not
# offered).
PERF_EVENTS = os.environ.get("CKPT_BENCH_PERF_EVENTS", "cycles,instructions")


def hardware_counters_offered():
    """True when `perf stat` counts PERF_EVENTS here (hardware counters are
    not offered on most VMs)."""
    try:
        out = subprocess.run(["perf", "stat", "-x,", "-e", PERF_EVENTS, "true"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and "<not supported>" not in out.stderr and \
        "<not counted>" not in out.stderr


def run_measured(argv, env, perf):
    """Runs a step's process; returns (stdout, counters). With `perf`, under
    `perf stat` with counting enabled only while the step's clock runs
    (--control through two FIFOs): counters maps each of PERF_EVENTS to
    its count."""
    if not perf:
        out = subprocess.run(argv, check=True, capture_output=True, text=True,
                             env=env)
        return out.stdout, {}
    with tempfile.TemporaryDirectory(prefix="ckpt-bench-perf-") as tmp:
        ctl, ack, report = (os.path.join(tmp, n) for n in ("ctl", "ack", "out"))
        os.mkfifo(ctl)
        os.mkfifo(ack)
        env = dict(env, CKPT_BENCH_PERF_CTL=ctl, CKPT_BENCH_PERF_ACK=ack)
        out = subprocess.run(
            ["perf", "stat", "-x,", "-o", report, "-e", PERF_EVENTS, "-D", "-1",
             "--control", f"fifo:{ctl},{ack}", "--"] + argv,
            check=True, capture_output=True, text=True, env=env)
        counters = {}
        with open(report) as f:
            for line in f:
                fields = line.strip().split(",")
                if len(fields) > 2 and fields[2] in PERF_EVENTS.split(","):
                    try:
                        counters[fields[2]] = float(fields[0])
                    except ValueError:
                        pass
        return out.stdout, counters
