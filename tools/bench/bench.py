#!/usr/bin/python3
"""The pytree benchmark: ckpt against the raw limit (write()/read() of the
same bytes), h5py, numpy.save, numpy.savez, torch.save/torch.load, Orbax,
TensorStore zarr3, safetensors, and ckpt from Python (its package).

    /usr/bin/python3 tools/bench/bench.py [--runs 5] [--scale 1] \
        [--workloads W1,W2,W3] [--dir /tmp/ckpt-bench] [--build build] \
        [--out tools/bench/results] [--processes 1,2,4] [--mpi-mib 512]

Every timed step of every tool runs in a fresh process, in the same
page-cache state: before a save its previous output is removed and dirty
pages are flushed; a load reads what its tool's save of the same round
wrote, from the page cache. A round runs every tool once; figures are
medians over --runs rounds. The raw limit of each step is its fastest
variant (kind of memory, 1 or 2 threads). --scale N divides the large
arrays of W1, W3 and W4 by N for quick runs. W4 (8 GiB) runs only when
asked for (--workloads W4).

Prints the table and the targets; writes OUT.json (every sample) and
OUT.png (the table as bars, when matplotlib is installed). Then, under
mpirun, the multi-process rows (ckpt_mpi_bench; --processes "" skips them).
"""
import argparse
import gc
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from state import (StepMeter, hardware_counters_offered,  # noqa: E402
                   run_measured, settle)
import verdict  # noqa: E402

# ------------------------------------------------------------- workloads


def filled(n, seed):
    """ckpt_bench.cpp's elements, bit for bit: float32 in [-0.5, 0.5) with
    24 random bits each, as incompressible as trained weights."""
    import numpy as np
    x = np.arange(n, dtype=np.uint32) * np.uint32(2654435761)
    x += np.uint32((seed * 40503) & 0xFFFFFFFF)
    x ^= x >> np.uint32(16)
    x *= np.uint32(0x7FEB352D)
    x ^= x >> np.uint32(15)
    x *= np.uint32(0x846CA68B)
    x ^= x >> np.uint32(16)
    return ((x >> np.uint32(8)).astype(np.float32) * np.float32(2.0 ** -24)
            - np.float32(0.5))


def make_workload(name, scale):
    """The same trees as ckpt_bench.cpp (arrays numbered from 1 in order)."""
    seed = iter(range(1, 1 << 30))
    if name in ("W1", "W4"):
        layers, per, n = (8, 8, (4 << 20)) if name == "W1" else (16, 16, 8 << 20)
        return {f"layer{i}": {f"w{j}": filled(n // scale, next(seed))
                              for j in range(per)} for i in range(layers)}
    if name == "W2":
        return {f"m{i}": {f"p{j}": filled(1000, next(seed)) for j in range(100)}
                for i in range(200)}
    if name == "W3":
        big = {f"emb{i}": filled((16 << 20) // scale, next(seed)) for i in range(4)}
        small = {f"s{i}": filled(64 + (i % 7) * 100, next(seed)) for i in range(5000)}
        meta = {}
        for i in range(100):
            meta[f"step{i}"] = i * 1000
            meta[f"tag{i}"] = f"run-{i}"
        return {"big": big, "small": small, "meta": meta}
    raise ValueError(name)


def flatten(tree, prefix=""):
    for key, value in tree.items():
        path = f"{prefix}/{key}" if prefix else key
        if isinstance(value, dict):
            yield from flatten(value, path)
        else:
            yield path, value


# ------------------------------------------------------------------ peers

def h5py_save(tree, path):
    import h5py
    with h5py.File(path, "w") as f:
        for key, value in flatten(tree):
            f.create_dataset(key, data=value)


def h5py_load(path):
    import h5py
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda k, v: out.__setitem__(k, v[()])
                     if isinstance(v, h5py.Dataset) else None)
    return out


def npsave_save(tree, path):
    import numpy as np
    os.makedirs(path)
    scalars = {}
    for i, (key, value) in enumerate(flatten(tree)):
        if isinstance(value, np.ndarray):
            np.save(os.path.join(path, f"{i}.npy"), value)
        else:
            scalars[key] = value
    with open(os.path.join(path, "scalars.json"), "w") as f:
        json.dump(scalars, f)


def npsave_load(path):
    import numpy as np
    out = {}
    for name in os.listdir(path):
        if name.endswith(".npy"):
            out[name] = np.load(os.path.join(path, name))
    with open(os.path.join(path, "scalars.json")) as f:
        out.update(json.load(f))
    return out


def npsavez_save(tree, path):
    import numpy as np
    np.savez(path, **{k: np.asarray(v) for k, v in flatten(tree)})


def npsavez_load(path):
    import numpy as np
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def torch_tree(tree):
    import numpy as np
    import torch
    return {k: torch_tree(v) if isinstance(v, dict)
            else torch.from_numpy(v) if isinstance(v, np.ndarray) else v
            for k, v in tree.items()}


def torch_save(tree, path):
    import torch
    torch.save(torch_tree(tree), path)


def torch_load(path):
    import torch
    return torch.load(path)


# ---- Orbax (what its users call), TensorStore's zarr3 directly, safetensors

def jax_arrays(tree):
    """The tree with its NumPy arrays as JAX arrays on the CPU (untimed:
    an Orbax user's state is JAX arrays already)."""
    import jax
    import numpy as np
    out = jax.tree_util.tree_map(
        lambda v: jax.device_put(v) if isinstance(v, np.ndarray) else v, tree)
    jax.block_until_ready(out)
    return out


def orbax_save(tree, path, compression=True):
    from orbax.checkpoint import v1 as ocp
    saving = ocp.options.ArrayOptions.Saving(use_compression=compression)
    with ocp.Context(array_options=ocp.options.ArrayOptions(saving=saving)):
        ocp.save_pytree(path, tree)


def orbax_load(path):
    import jax
    from orbax.checkpoint import v1 as ocp
    out = ocp.load_pytree(path)
    jax.block_until_ready(out)
    return out


def tensorstore_save(tree, path):
    """Each array a zarr v3 array of its own (TensorStore's defaults), all
    opened and written concurrently; other leaves in a JSON file."""
    import numpy as np
    import tensorstore as ts
    os.makedirs(path)
    scalars, opens = {}, []
    for i, (key, value) in enumerate(flatten(tree)):
        if isinstance(value, np.ndarray):
            spec = {"driver": "zarr3",
                    "kvstore": {"driver": "file", "path": os.path.join(path, str(i))}}
            opens.append((ts.open(spec, create=True, dtype=value.dtype,
                                  shape=value.shape), value))
        else:
            scalars[key] = value
    writes = [f.result().write(value) for f, value in opens]
    for w in writes:
        w.result()
    with open(os.path.join(path, "scalars.json"), "w") as f:
        json.dump(scalars, f)


def tensorstore_load(path):
    import tensorstore as ts
    names = [n for n in os.listdir(path) if n != "scalars.json"]
    opens = [ts.open({"driver": "zarr3", "kvstore": {
        "driver": "file", "path": os.path.join(path, n)}}) for n in names]
    reads = [f.result().read() for f in opens]
    out = {n: r.result() for n, r in zip(names, reads)}
    with open(os.path.join(path, "scalars.json")) as f:
        out.update(json.load(f))
    return out


def safetensors_save(tree, path):
    """Every array in one file; other leaves as JSON in its metadata."""
    import numpy as np
    from safetensors.numpy import save_file
    leaves = dict(flatten(tree))
    arrays = {k: v for k, v in leaves.items() if isinstance(v, np.ndarray)}
    meta = {k: json.dumps(v) for k, v in leaves.items() if k not in arrays}
    save_file(arrays, path, metadata=meta or None)


def safetensors_load(path):
    from safetensors.numpy import load_file
    return load_file(path)


# ckpt from Python: the same library through its Python package, to show
# what the binding costs.
PYTHON = "ckpt from Python"


def ckpt_python_save(tree, path):
    """ckpt's Python package (python/), as the C++ row saves: no fsync."""
    import ckpt
    with ckpt.Context(fsync=False):
        ckpt.save_pytree(path, tree)


def ckpt_python_load(path):
    import ckpt
    return ckpt.load_pytree(path)


class Peer:
    def __init__(self, save, load, suffix, modules, prepare=None, warm=None):
        self.save, self.load, self.suffix = save, load, suffix
        self.modules = modules  # imported before the clock starts
        self.prepare = prepare  # turns the workload into what the peer saves
        # Run before the clock too: what the library does once per process
        # (ckpt loads its plugins; ckpt_bench makes its Context untimed).
        self.warm = warm


def ckpt_python_warm():
    from ckpt import handlers
    handlers.handler_types()


def orbax_save_raw(tree, path):
    orbax_save(tree, path, compression=False)


PEERS = {
    "h5py": Peer(h5py_save, h5py_load, ".h5", ["numpy", "h5py"]),
    "numpy.save": Peer(npsave_save, npsave_load, ".npy.d", ["numpy"]),
    "numpy.savez": Peer(npsavez_save, npsavez_load, ".npz", ["numpy"]),
    "torch.save": Peer(torch_save, torch_load, ".pt", ["numpy", "torch"]),
    "orbax": Peer(orbax_save, orbax_load, ".orbax",
                  ["jax", "orbax.checkpoint"], jax_arrays),
    "orbax, no compression": Peer(orbax_save_raw, orbax_load, ".orbax-raw",
                                  ["jax", "orbax.checkpoint"], jax_arrays),
    "tensorstore zarr3": Peer(tensorstore_save, tensorstore_load, ".zarr3",
                              ["numpy", "tensorstore"]),
    "safetensors": Peer(safetensors_save, safetensors_load, ".safetensors",
                        ["numpy", "safetensors.numpy"]),
    PYTHON: Peer(ckpt_python_save, ckpt_python_load, ".ckpt-py",
                 ["numpy", "ckpt"], warm=ckpt_python_warm),
}
# Peers whose checkpoints ckpt loads too: a row of its own.
CKPT_READS = {"orbax": "ckpt, Orbax's checkpoint"}
# ckpt saving in Orbax's format ("storage": "orbax"), and loading that.
ORBAX_FORMAT = "ckpt, Orbax's format"


def available_peers():
    """The peers whose modules this Python has (run bench.py with the
    repository's .venv/bin/python for all of them)."""
    import importlib.util
    out = []
    for name, peer in PEERS.items():
        try:
            if all(importlib.util.find_spec(m) for m in peer.modules):
                out.append(name)
        except ModuleNotFoundError:
            pass
    return out


def run_peer_step(a):
    """One timed step of one peer in this (fresh) process; prints JSON."""
    import importlib
    peer = PEERS[a.peer]
    path = peer_path(a.dir, a.workload, a.peer)
    # The peer's modules are imported before the clock starts.
    for module in peer.modules:
        importlib.import_module(module)
    if peer.warm:
        peer.warm()
    meter = StepMeter()
    if a.peer_step == "save":
        tree = make_workload(a.workload, a.scale)
        if peer.prepare:
            tree = peer.prepare(tree)
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.exists(path):
            os.remove(path)
        os.sync()
        gc.collect()
        meter.start()
        peer.save(tree, path)
    else:
        meter.start()
        loaded = peer.load(path)  # noqa: F841
    print(json.dumps(meter.stop()))


def peer_path(scratch, workload, peer):
    return os.path.join(scratch, f"peer-{workload}{PEERS[peer].suffix}")


# ------------------------------------------------------------ the plan

# The raw limit's variants: (memory, threads). "mapped" is memory the
# caller already holds (its own buffers): the limit of loads into them.
FRESH = [(m, t) for m in ("plain", "populated", "huge") for t in (1, 2)]
MAPPED = [("mapped", 1), ("mapped", 2)]


def plan_round(workload, peers, round_number, scratch):
    """The processes of one round, in order (plan_blocks, flattened)."""
    return [entry for block in plan_blocks(workload, peers, round_number,
                                           scratch) for entry in block]


def plan_blocks(workload, peers, round_number, scratch):
    """The blocks of one round: lists of (kind, row, step, args, inputs), where
    kind is "cpp" (ckpt_bench) or "peer", row None marks an untimed helper
    step, and inputs are what a load reads (warmed into the page cache
    before it). A round is made of blocks, one per tool (a tool's loads
    after the save that wrote what they read); the blocks run in an order
    drawn anew each round (seeded by the round number, so a rerun repeats
    it), and so does the order of the two fsync'd saves."""
    rng = random.Random(1000 + round_number)
    base = os.path.join(scratch, f"ckpt-{workload}")
    unchecked = base + "-unchecked"
    raw_file = os.path.join(scratch, f"raw-{workload}.bin")

    def cpp(row, step, args, inputs=()):
        return ("cpp", row, step, ["--step"] + args, list(inputs))

    fsyncs = [cpp("ckpt + fsync", "save", ["save_fsync"]),
              cpp("raw + fsync", "save", ["raw_write_fsync"])]
    rng.shuffle(fsyncs)
    fsync_block = fsyncs + [cpp(None, None, ["remove_raw"]),
                            cpp(None, None, ["remove_ckpt"])]
    ckpt_block = [
        cpp("ckpt, immutable arrays", "save", ["save_immutable"]),
        cpp("ckpt async (blocking)", "save", ["async"]),
        cpp("ckpt", "save", ["save"]),
        cpp("ckpt", "load", ["load"], [base]),
        cpp(None, None, ["prepare_unchecked"]),
        cpp("ckpt, no integrity records", "load", ["load_unchecked"], [unchecked]),
        cpp("ckpt into your buffers", "load", ["load_into"], [base]),
    ]
    if workload == "W4":
        ckpt_block.append(cpp("ckpt, 1% of the arrays", "load",
                              ["load_partial"], [base]))
    ckpt_block.append(cpp(None, None, ["remove_ckpt"]))
    raw_block = [
        cpp(("raw write", "plain", 2), "save", ["raw_write", "--threads", "2"]),
        cpp(("raw write", "plain", 1), "save", ["raw_write"]),
    ]
    for m, t in FRESH + MAPPED:
        raw_block.append(cpp(("raw read", m, t), "load",
                             ["raw_read", "--memory", m, "--threads", str(t)],
                             [raw_file]))
    if workload == "W4":
        for m, t in FRESH:
            raw_block.append(cpp(("raw read 1%", m, t), "load",
                                 ["raw_read_partial", "--memory", m,
                                  "--threads", str(t)], [raw_file]))
    raw_block.append(cpp(None, None, ["remove_raw"]))
    # ckpt writing Orbax's own format (zstd, as Orbax's default), and
    # loading it: the rows to race Orbax in its format.
    orbax_files = base + "-orbax"
    orbax_block = [cpp(ORBAX_FORMAT, "save", ["save_orbax"]),
                   cpp(ORBAX_FORMAT, "load",
                       ["load", "--path", orbax_files], [orbax_files]),
                   cpp(None, None, ["remove_ckpt"])]
    memcpy_block = [cpp(("memcpy", m, t), "save",
                        ["memcpy", "--memory", m, "--threads", str(t)])
                    for m, t in FRESH]
    blocks = [fsync_block, ckpt_block, raw_block, memcpy_block]
    if workload != "W4":
        blocks.append(orbax_block)
    # W4 shows how ckpt's cost grows with size and with what is asked for,
    # against the raw limit; the peers' rows are those of W1.
    for peer in (peers if workload != "W4" else []):
        path = peer_path(scratch, workload, peer)
        block = [("peer", peer, "save", peer, []),
                 ("peer", peer, "load", peer, [path])]
        if peer in CKPT_READS:
            block.append(cpp(CKPT_READS[peer], "load",
                             ["load", "--path", path], [path]))
        blocks.append(block)
    rng.shuffle(blocks)
    return blocks


def workload_bytes(name, scale):
    """The bytes of a workload's arrays (make_workload's, without making
    it)."""
    if name == "W1":
        return 64 * ((4 << 20) // scale) * 4
    if name == "W4":
        return 256 * ((8 << 20) // scale) * 4
    if name == "W2":
        return 20000 * 1000 * 4
    if name == "W3":
        return (4 * ((16 << 20) // scale) +
                sum(64 + (i % 7) * 100 for i in range(5000))) * 4
    raise ValueError(name)


def primer_bytes(workload, scale):
    """What a step faults in, at most: twice the workload's bytes (a save's
    page cache and a tool's own buffers, or a load's arrays and what it
    reads through), bounded by a quarter of the memory available now."""
    available = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024
    return min(2 * workload_bytes(workload, scale), available // 4)


def run_json(argv):
    out = subprocess.run(argv, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def timed_step(a, argv, inputs, primer, perf):
    """One timed step in its own process, from the fixed state."""
    settle(a.dir, a.cache, inputs)
    env = dict(os.environ, CKPT_BENCH_PRIMER_BYTES=str(primer))
    stdout, counters = run_measured(argv, env, perf)
    result = json.loads(stdout.strip().splitlines()[-1])
    result.update(counters)
    return result


def run_entry(a, workload, entry, primer, perf, info):
    """Runs one entry of a plan; its step result, or None for a helper."""
    kind, row, step, args, inputs = entry
    common = ["--workload", workload, "--scale", str(a.scale), "--dir", a.dir]
    if kind == "cpp":
        argv = [os.path.join(a.build, "tools", "bench", "ckpt_bench")] + common + args
        if row is None:
            run_json(argv)
            return None
        result = timed_step(a, argv, inputs, primer, perf)
        # The first step that reports the workload's size (a load of
        # Orbax's files reports none).
        for key in ("bytes", "arrays"):
            if info.get(key) is None:
                info[key] = result.get(key)
        return result
    argv = [sys.executable, __file__, "--peer", args, "--peer-step", step] + common
    return timed_step(a, argv, inputs, primer, perf)


# How often a step whose sample is a kernel outlier (verdict.kernel_outlier)
# is taken again, at most.
RETAKES = 2


def retake_outliers(a, workload, peers, perf, samples, info, primer):
    """Takes again, for every tool alike, each sample that is a kernel
    outlier of its row: the block that holds it is run again from the fixed
    state (a load needs its block's save), and the new sample replaces the
    outlier; the others of the block are dropped. Returns what was replaced,
    for the JSON."""
    retaken = []
    for key, values in samples.items():
        for r, sample in enumerate(values):
            if not verdict.kernel_outlier(sample, values):
                continue
            block = next(b for b in plan_blocks(workload, peers, r, a.dir)
                         if any((e[1], e[2]) == key for e in b))
            record = {"row": key[0], "step": key[1], "round": r + 1,
                      "replaced": sample, "retakes": []}
            for _ in range(RETAKES):
                new = None
                for entry in block:
                    result = run_entry(a, workload, entry, primer, perf, info)
                    if (entry[1], entry[2]) == key:
                        new = result
                record["retakes"].append(new)
                values[r] = new
                if not verdict.kernel_outlier(new, values):
                    break
            retaken.append(record)
    return retaken


# Rounds per workload when --runs is not given: W1's steps vary most, and
# with five rounds one slow sample still decides its save verdict against
# h5py (tools/bench/README.md, "Results"); nine make it hold.
DEFAULT_ROUNDS = {"W1": 9}


def rounds_of(a, workload):
    return a.runs if a.runs else DEFAULT_ROUNDS.get(workload, 5)


def measure(a, workload, peers, perf):
    """samples[(row, step)] = list of step results ({"seconds", ...}), one
    per round, and what retake_outliers replaced."""
    primer = primer_bytes(workload, a.scale)
    samples = {}
    info = {}
    runs = rounds_of(a, workload)
    for r in range(runs):
        for entry in plan_round(workload, peers, r, a.dir):
            result = run_entry(a, workload, entry, primer, perf, info)
            if result is not None:
                samples.setdefault((entry[1], entry[2]), []).append(result)
        print(f"  {workload}: round {r + 1} of {runs} done", file=sys.stderr)
    info["retaken"] = retake_outliers(a, workload, peers, perf, samples, info,
                                      primer)
    for path in os.listdir(a.dir):
        if workload in path:
            full = os.path.join(a.dir, path)
            shutil.rmtree(full) if os.path.isdir(full) else os.remove(full)
    return samples, info


def med(samples, key="seconds"):
    return statistics.median(s[key] for s in samples)


def seconds(samples):
    return [s["seconds"] for s in samples]


def best_variant(samples, name, step):
    """(median seconds, label, samples, row) of the fastest variant of raw
    `name`."""
    best = None
    for (row, s), values in samples.items():
        if isinstance(row, tuple) and row[0] == name and s == step:
            m = med(values)
            if best is None or m < best[0]:
                label = f"{name} ({row[1]}, {row[2]} thread{'s' if row[2] > 1 else ''})"
                best = (m, label, values, row)
    return best


# The costs beside wall time, as the tables show them (median per step).
COSTS = ["cpu_user_seconds", "cpu_system_seconds", "minor_faults",
         "major_faults", "read_bytes", "write_bytes", "rchar", "wchar",
         "cycles", "instructions"]


def costs_of(values):
    """Medians of the costs present in every sample of `values`."""
    return {k: med(values, k) for k in COSTS
            if all(k in v for v in values)}


def summarize(workload, samples, info, peers):
    """The table rows, the figures and sample series the targets and
    verdicts need."""
    if workload == "W4":
        peers = []
    raw_w, raw_w_label, raw_w_samples, raw_w_row = best_variant(samples, "raw write", "save")
    fresh = {k: v for k, v in samples.items()
             if not (isinstance(k[0], tuple) and k[0][1] == "mapped")}
    raw_r, raw_r_label, raw_r_samples, raw_r_row = best_variant(fresh, "raw read", "load")
    mapped = {k: v for k, v in samples.items()
              if isinstance(k[0], tuple) and k[0][1] == "mapped"}
    raw_m, raw_m_label, raw_m_samples, _ = best_variant(mapped, "raw read", "load")
    copy, copy_label, copy_samples, _ = best_variant(samples, "memcpy", "save")
    s = {"workload": workload, "bytes": info["bytes"], "arrays": info["arrays"],
         "retaken": info.get("retaken", []),
         "raw_write": raw_w, "raw_write_label": raw_w_label,
         "raw_write_fsync": med(samples[("raw + fsync", "save")]),
         "raw_read": raw_r, "raw_read_label": raw_r_label,
         "raw_read_mapped": raw_m, "raw_read_mapped_label": raw_m_label,
         "memcpy": copy, "memcpy_label": copy_label}
    series = {"raw_write": seconds(raw_w_samples),
              "raw_read": seconds(raw_r_samples),
              "raw_read_mapped": seconds(raw_m_samples),
              "memcpy": seconds(copy_samples),
              "raw_write_fsync": seconds(samples[("raw + fsync", "save")])}
    for row, key in [("ckpt", "ckpt"), ("ckpt + fsync", "ckpt_fsync"),
                     ("ckpt, immutable arrays", "ckpt_immutable"),
                     ("ckpt async (blocking)", "ckpt_async")]:
        s[key + "_save"] = med(samples[(row, "save")])
        s[key + "_save_rss"] = med(samples[(row, "save")], "rss_extra_bytes")
        series[key + "_save"] = seconds(samples[(row, "save")])
        series[key + "_save_rss"] = [v["rss_extra_bytes"] for v in samples[(row, "save")]]
    for row, key in [("ckpt", "ckpt"), ("ckpt, no integrity records", "ckpt_unchecked"),
                     ("ckpt into your buffers", "ckpt_into")]:
        s[key + "_load"] = med(samples[(row, "load")])
        s[key + "_load_rss"] = med(samples[(row, "load")], "rss_extra_bytes")
        series[key + "_load"] = seconds(samples[(row, "load")])
        series[key + "_load_rss"] = [v["rss_extra_bytes"] for v in samples[(row, "load")]]
    if ("ckpt, 1% of the arrays", "load") in samples:
        s["ckpt_partial_load"] = med(samples[("ckpt, 1% of the arrays", "load")])
        series["ckpt_partial_load"] = seconds(samples[("ckpt, 1% of the arrays", "load")])
        s["raw_read_partial"], s["raw_read_partial_label"], _, _ = best_variant(
            samples, "raw read 1%", "load")
    s["peers"] = {p: {"save": med(samples[(p, "save")]),
                      "load": med(samples[(p, "load")]),
                      "save_rss": med(samples[(p, "save")], "rss_extra_bytes"),
                      "load_rss": med(samples[(p, "load")], "rss_extra_bytes")}
                  for p in peers}
    for p in peers:
        for step in ("save", "load"):
            series[f"{p}_{step}"] = seconds(samples[(p, step)])
    orbax_read = (CKPT_READS["orbax"], "load")
    if orbax_read in samples:
        s["ckpt_orbax_load"] = med(samples[orbax_read])
        series["ckpt_orbax_load"] = seconds(samples[orbax_read])
    if (ORBAX_FORMAT, "save") in samples:
        for step in ("save", "load"):
            s[f"ckpt_orbax_format_{step}"] = med(samples[(ORBAX_FORMAT, step)])
            series[f"ckpt_orbax_format_{step}"] = seconds(samples[(ORBAX_FORMAT, step)])
    s["series"] = series
    s["verdicts"] = verdicts_of(s)
    # Where the time goes: the costs of the rows the verdicts compare.
    cost_rows = [("ckpt", "save"), (raw_w_row, "save"), ("ckpt", "load"),
                 (raw_r_row, "load")] + \
        [(p, step) for p in peers for step in ("save", "load")] + \
        [(ORBAX_FORMAT, step) for step in ("save", "load")
         if (ORBAX_FORMAT, step) in samples]
    labels = {raw_w_row: raw_w_label, raw_r_row: raw_r_label}
    s["costs"] = [{"row": labels.get(row, row), "step": step,
                   "seconds": med(samples[(row, step)]),
                   **costs_of(samples[(row, step)])}
                  for row, step in cost_rows]
    rows = [
        (raw_w_label.replace("raw write", "raw write()"), raw_w, None),
        (raw_r_label.replace("raw read", "raw read()"), None, raw_r),
        ("raw + fsync", s["raw_write_fsync"], None),
        (raw_m_label.replace("raw read", "raw read()").replace("(mapped, ", "(into mapped buffers, "),
         None, raw_m),
        ("ckpt", s["ckpt_save"], s["ckpt_load"]),
        ("ckpt + fsync", s["ckpt_fsync_save"], None),
        ("ckpt, immutable arrays", s["ckpt_immutable_save"], None),
        ("ckpt async (blocking)", s["ckpt_async_save"], None),
        ("ckpt, no integrity records", None, s["ckpt_unchecked_load"]),
        ("ckpt into your buffers", None, s["ckpt_into_load"]),
        (copy_label.replace("memcpy", "memcpy of the data"), copy, None),
    ]
    if "ckpt_partial_load" in s:
        rows.append(("ckpt, 1% of the arrays", None, s["ckpt_partial_load"]))
        rows.append((s["raw_read_partial_label"].replace("raw read 1%",
                                                         "raw read() of the 1%"),
                     None, s["raw_read_partial"]))
    for p in peers:
        rows.append((p, s["peers"][p]["save"], s["peers"][p]["load"]))
    if "ckpt_orbax_load" in s:
        rows.append((CKPT_READS["orbax"], None, s["ckpt_orbax_load"]))
    if "ckpt_orbax_format_save" in s:
        rows.append((ORBAX_FORMAT, s["ckpt_orbax_format_save"],
                     s["ckpt_orbax_format_load"]))
    return rows, s


def verdicts_of(s):
    """ckpt against each peer of workload summary `s`, step by step, by the
    verdict rule (verdict.compare) on the series of samples."""
    series = s["series"]
    out = [dict(verdict.compare(series[f"ckpt_{step}"], series[f"{p}_{step}"]),
                step=step, peer=p)
           for p in s["peers"] for step in ("save", "load")]
    if "ckpt_orbax_load" in series:
        # ckpt loading the very files Orbax wrote, against Orbax.
        out.append(dict(
            verdict.compare(series["ckpt_orbax_load"], series["orbax_load"]),
            step="load of Orbax's files", peer="orbax"))
    if "ckpt_orbax_format_save" in series and "orbax_save" in series:
        # ckpt writing and reading Orbax's format, against Orbax itself.
        for step in ("save", "load"):
            out.append(dict(
                verdict.compare(series[f"ckpt_orbax_format_{step}"],
                                series[f"orbax_{step}"]),
                step=f"{step} in Orbax's format", peer="orbax"))
    return out


def targets(s):
    """(target, measured, outcome) for workload summary `s` (issue 13's
    targets). Each figure is a ratio of medians with its bootstrap 95%
    interval; the outcome is "met", "missed" or "undecided (noise)"
    (verdict.target)."""
    w = s["workload"]
    series = s["series"]
    out = []

    def ratio(text, a, b, threshold, at_least, percent=False):
        """The target on median(a) / median(b)."""
        r, low, high = verdict.ratio_interval(a, b)
        k = 100 if percent else 1
        unit = "%" if percent else "x"
        shown = f"{r * k:.2f}{unit} [{low * k:.2f}, {high * k:.2f}]"
        out.append((f"{w} {text}", shown,
                    verdict.target(low, high, threshold, at_least)))

    def of_data(key):
        return [v / s["bytes"] for v in series[key]]

    def all_faster(step):
        # Against the other tools: ckpt from Python is ckpt itself.
        mine = [v for v in s["verdicts"]
                if v["step"] == step and v["peer"] != PYTHON]
        found = [v["verdict"] for v in mine]
        if any(v == "slower" for v in found):
            outcome = "missed"
        elif all(v == "faster" for v in found):
            outcome = "met"
        else:
            outcome = "undecided (noise)"
        shown = ", ".join(f"{v['peer']} {v['ratio']:.2f}x" for v in mine)
        out.append((f"{w} {step} faster than every peer", shown, outcome))

    if w in ("W1", "W4"):
        ratio("save >= 0.9x raw write throughput", series["raw_write"],
              series["ckpt_save"], 0.9, True)
        ratio("fsync'd save >= 0.9x raw + fsync", series["raw_write_fsync"],
              series["ckpt_fsync_save"], 0.9, True)
        ratio("load >= 0.9x the read limit", series["raw_read"],
              series["ckpt_load"], 0.9, True)
        ratio("load into your buffers >= 0.9x read() into mapped buffers",
              series["raw_read_mapped"], series["ckpt_into_load"], 0.9, True)
    if w == "W1":
        all_faster("load")
    if w in ("W2", "W3"):
        ratio("save <= 1.3x raw", series["ckpt_save"], series["raw_write"],
              1.3, False)
        ratio("load <= 1.5x raw", series["ckpt_load"], series["raw_read"],
              1.5, False)
    if w == "W3":
        all_faster("save")
        all_faster("load")
    if w in ("W1", "W2", "W3"):
        ratio("async blocking tier <= 1.2x one memcpy", series["ckpt_async_save"],
              series["memcpy"], 1.2, False)
        ones = [1.0] * len(series["ckpt_load_rss"])
        ratio("async save extra memory <= 1.1x the data",
              of_data("ckpt_async_save_rss"), ones, 1.1, False)
        ratio("load extra memory <= 1.1x the data", of_data("ckpt_load_rss"),
              ones, 1.1, False)
    if w in ("W1", "W2", "W3") and "orbax_save" in series:
        # Issue 24: ckpt's own format against Orbax's defaults.
        ratio("save >= 3x faster than Orbax", series["orbax_save"],
              series["ckpt_save"], 3, True)
        ratio("load >= 3x faster than Orbax", series["orbax_load"],
              series["ckpt_load"], 3, True)
        # Writing Orbax's own format: at least as fast as Orbax writes it.
        ratio("save in Orbax's format at least as fast as Orbax",
              series["orbax_save"], series["ckpt_orbax_format_save"], 1, True)
        ratio("load of ckpt's Orbax files at least as fast as Orbax",
              series["orbax_load"], series["ckpt_orbax_format_load"], 1, True)
    if w in ("W1", "W2", "W3") and f"{PYTHON}_save" in series:
        # Issue 26: the binding adds no copies; and against Orbax.
        for step in ("save", "load"):
            ratio(f"{step} from Python within 10% of C++",
                  series[f"{PYTHON}_{step}"], series[f"ckpt_{step}"], 1.1,
                  False)
            if f"orbax_{step}" in series:
                ratio(f"{step} from Python >= 3x faster than Orbax",
                      series[f"orbax_{step}"], series[f"{PYTHON}_{step}"], 3,
                      True)
    if w == "W4":
        ratio("1% partial load ~ 1% of a full load", series["ckpt_partial_load"],
              series["ckpt_load"], 0.03, False, percent=True)
    return out


# ------------------------------------------------------------- reports

def print_table(tables, note):
    print(f"pytree benchmark ({note}); medians in seconds; x = time / raw time")
    print(f"{'workload':8} {'tool':44} {'save s':>8} {'x raw':>6} {'load s':>8} {'x raw':>6}")
    for s, rows in tables:
        for tool, save, load in rows:
            cells = []
            for value, raw in ((save, s["raw_write"]), (load, s["raw_read"])):
                cells.append(f"{value:8.3f} {value / raw:6.2f}" if value is not None
                             else f"{'':8} {'':6}")
            print(f"{s['workload']:8} {tool:44} {cells[0]} {cells[1]}")
    print()
    for s, _ in tables:
        mib = 2 ** 20
        print(f"{s['workload']}: {s['arrays']} arrays, {s['bytes'] / 1e6:.0f} MB; "
              f"extra memory: save {s['ckpt_save_rss'] / mib:.0f} MiB, "
              f"async save {s['ckpt_async_save_rss'] / s['bytes']:.2f}x data, "
              f"load {s['ckpt_load_rss'] / s['bytes']:.2f}x data; "
              f"no integrity records: load {s['ckpt_unchecked_load'] / s['ckpt_load']:.2f}x")
        for t in s["retaken"]:
            row = t["row"] if isinstance(t["row"], str) else " ".join(map(str, t["row"]))
            taken = ", ".join(f"{x['seconds']:.3f} s" for x in t["retakes"])
            print(f"  taken again (system time {t['replaced']['cpu_system_seconds']:.2f} s, "
                  f"a kernel outlier): {row} {t['step']} of round {t['round']}, "
                  f"{t['replaced']['seconds']:.3f} s -> {taken}")


def print_verdicts(tables):
    """ckpt against each peer: the ratio of medians (ckpt / peer), its 95%
    interval, and the verdict (verdict.compare)."""
    print()
    print("verdicts: ckpt time / peer time, median [95% interval]; a verdict "
          "only when it holds across rounds")
    for s, _ in tables:
        for v in s["verdicts"]:
            word = {"faster": "ckpt faster", "slower": "ckpt SLOWER"}.get(
                v["verdict"], v["verdict"])
            print(f"  {s['workload']:3} {v['step']:4} vs {v['peer']:12} "
                  f"{verdict.interval_text(v):24} {word}")


def print_costs(tables):
    """Where the time goes, per step: CPU time, faults, bytes."""
    print()
    print("where the time goes (medians): wall s, CPU user+system s, "
          "minor/major faults, MB read/written to disk, MB through "
          "read()/write(); cycles and instructions where offered")
    for s, _ in tables:
        for c in s["costs"]:
            cpu = c.get("cpu_user_seconds", 0) + c.get("cpu_system_seconds", 0)
            line = (f"  {s['workload']:3} {c['step']:4} {c['row']:34} "
                    f"{c['seconds']:7.3f} cpu {cpu:6.3f} "
                    f"({c.get('cpu_system_seconds', 0):.3f} sys) "
                    f"faults {c.get('minor_faults', 0):8.0f}/{c.get('major_faults', 0):.0f} "
                    f"disk {c.get('read_bytes', 0) / 1e6:6.0f}/{c.get('write_bytes', 0) / 1e6:6.0f} "
                    f"io {c.get('rchar', 0) / 1e6:6.0f}/{c.get('wchar', 0) / 1e6:6.0f}")
            if "cycles" in c:
                line += f" cycles {c['cycles']:.3g} instr {c['instructions']:.3g}"
            print(line)


def print_targets(tables):
    print()
    print("targets (issues 13 and 24), ratio of medians [95% interval]:")
    for s, _ in tables:
        for text, measured, outcome in targets(s):
            print(f"  {text:62} {measured:>26}  {outcome}")


def draw(tables, note, png):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"(no picture: matplotlib is not installed; {png} not written)")
        return
    fig, axes = plt.subplots(1, len(tables), figsize=(4.2 * len(tables), 4.6),
                             squeeze=False)
    tools = ["raw limit", "ckpt", "h5py", "numpy.save", "numpy.savez", "torch.save",
             "orbax", "orbax, no compression", "tensorstore zarr3", "safetensors"]
    colors = ["#777777", "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#d62728",
              "#8c564b", "#e377c2", "#bcbd22", "#17becf"]
    for ax, (s, _) in zip(axes[0], tables):
        values = {"raw limit": (s["raw_write"], s["raw_read"]),
                  "ckpt": (s["ckpt_save"], s["ckpt_load"])}
        for p, v in s["peers"].items():
            values[p] = (v["save"], v["load"])
        present = [t for t in tools if t in values]
        width = 0.8 / len(present)
        for k, t in enumerate(present):
            xs = [g + (k - (len(present) - 1) / 2) * width for g in (0, 1)]
            ax.bar(xs, values[t], width, label=t, color=colors[tools.index(t)])
        ax.set_xticks([0, 1], ["save", "load"])
        ax.set_yscale("log")
        ax.set_ylabel("seconds (median, log scale)")
        ax.set_title(f"{s['workload']}: {s['arrays']} arrays, {s['bytes'] / 1e6:.0f} MB")
        ax.grid(axis="y", which="both", alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.suptitle(f"ckpt pytree benchmark ({note}); lower is better", fontsize=10)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    print(f"picture: {png}")


def multiprocess_table(a, note):
    """The sharded save and load over 1, 2 and 4 processes (ckpt_mpi_bench)."""
    binary = os.path.join(a.build, "tools", "bench", "ckpt_mpi_bench")
    print(f"multi-process sharded save/load of {a.mpi_mib} MiB ({note}); "
          "medians; x = time / raw time of the same processes")
    print(f"{'processes':>9} {'save s':>8} {'GB/s':>6} {'x raw':>6} "
          f"{'raw s':>7} {'load s':>8} {'GB/s':>6} {'x raw':>6} {'raw s':>7}")
    results = []
    for n in a.processes.split(","):
        r = run_json(["mpirun", "--allow-run-as-root", "--oversubscribe", "-np", n,
                      binary, "--mib", str(a.mpi_mib), "--runs", str(a.runs or 5),
                      "--dir", a.dir])
        results.append(r)
        gb = r["bytes"] / 1e9
        print(f"{r['processes']:>9} {r['ckpt_save']:8.3f} {gb / r['ckpt_save']:6.2f} "
              f"{r['ckpt_save'] / r['raw_write']:6.2f} {r['raw_write']:7.3f} "
              f"{r['ckpt_load']:8.3f} {gb / r['ckpt_load']:6.2f} "
              f"{r['ckpt_load'] / r['raw_read']:6.2f} {r['raw_read']:7.3f}")
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=None,
                        help="rounds per workload (default: 9 for W1, 5 "
                        "for the others)")
    parser.add_argument("--scale", type=int, default=1)
    parser.add_argument("--workloads", default="W1,W2,W3")
    parser.add_argument("--dir", default="/tmp/ckpt-bench")
    parser.add_argument("--build", default=os.path.join(HERE, "..", "..", "build"))
    parser.add_argument("--out", default=os.path.join(HERE, "results"),
                        help="writes OUT.json and OUT.png")
    parser.add_argument("--processes", default="1,2,4")
    parser.add_argument("--mpi-mib", type=int, default=512)
    parser.add_argument("--cache", choices=["files", "system"], default="files",
                        help="how the page cache is dropped before each step: "
                        "the scratch folder's files (fadvise, any user) or "
                        "the whole system's (drop_caches, root)")
    parser.add_argument("--perf", choices=["auto", "on", "off"], default="auto",
                        help="cycles and instructions with perf stat "
                        "(auto: where the machine offers them)")
    parser.add_argument("--compare", metavar="REV",
                        help="A/B: this build against revision REV's, step "
                        "by step (ckpt rows only)")
    parser.add_argument("--peers", help="comma-separated peers to race "
                        "(default: every one this Python has)")
    # Internal: one step of one peer, in a fresh process.
    parser.add_argument("--peer", help=argparse.SUPPRESS)
    parser.add_argument("--peer-step", help=argparse.SUPPRESS)
    parser.add_argument("--workload", help=argparse.SUPPRESS)
    a = parser.parse_args()
    # ckpt's Python package of this build, for the "ckpt from Python" peer
    # (and its fresh processes).
    package = os.path.join(os.path.abspath(a.build), "python")
    if os.path.isdir(os.path.join(package, "ckpt")):
        sys.path.insert(0, package)
        os.environ["PYTHONPATH"] = os.pathsep.join(
            filter(None, [package, os.environ.get("PYTHONPATH")]))
    if a.peer:
        run_peer_step(a)
        return 0
    os.makedirs(a.dir, exist_ok=True)
    perf = a.perf == "on" or (a.perf == "auto" and hardware_counters_offered())
    workloads = list(filter(None, a.workloads.split(",")))
    if a.compare:
        from compare import compare_revisions
        compare_revisions(a, workloads, lambda w: primer_bytes(w, a.scale), perf)
        return 0
    note = (f"runs={a.runs or 'W1 9, others 5'} scale={a.scale} cpus={os.cpu_count()} "
            f"cache={a.cache} perf={'on' if perf else 'not offered'}")
    peers = available_peers()
    if a.peers is not None:
        wanted = list(filter(None, a.peers.split(",")))
        missing = [p for p in wanted if p not in peers]
        if missing:
            print(f"bench: peers not available here: {missing} (known: "
                  f"{sorted(PEERS)}; run with the repository's .venv)")
            return 2
        peers = wanted
    tables = []
    raw = {}
    for w in workloads:
        samples, info = measure(a, w, peers, perf)
        rows, s = summarize(w, samples, info, peers)
        tables.append((s, rows))
        raw[w] = {f"{row}|{step}" if not isinstance(row, tuple)
                  else f"{'/'.join(map(str, row))}|{step}": v
                  for (row, step), v in samples.items()}
    print_table(tables, note)
    print_verdicts(tables)
    print_costs(tables)
    print_targets(tables)
    mpi = multiprocess_table(a, note) if a.processes else []
    result = {"note": note, "summaries": [s for s, _ in tables],
              "targets": [t for s, _ in tables for t in targets(s)],
              "samples": raw, "multiprocess": mpi,
              "rusage_children_max_rss_kib":
                  resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out + ".json", "w") as f:
        json.dump(result, f, indent=1)
    print(f"samples: {a.out}.json")
    draw(tables, note, a.out + ".png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
