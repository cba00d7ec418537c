#!/usr/bin/python3
"""The pytree benchmark: ckpt against raw write()/read(), h5py, numpy.save,
numpy.savez and torch.save/torch.load, on the issue's three workloads.

    /usr/bin/python3 tools/bench/bench.py [--runs 5] [--scale 1] \
        [--workloads W1,W2,W3] [--dir /tmp/ckpt-bench] [--build build] \
        [--processes 1,2,4] [--mpi-mib 512]

Every figure is the median of --runs runs. Before each timed step its
output is removed and dirty pages are flushed (untimed), so that no step
pays for the previous one's writeback. --scale N divides the large arrays
of W1 and W3 by N for quick runs. Prints one table; ratios are to the raw
write (save columns) or raw read (load columns) of the same bytes.

Then, under mpirun, the multi-process rows (ckpt_mpi_bench): one sharded
save and load of --mpi-mib MiB split by rows over 1, 2 and 4 processes,
against each process write()ing and read()ing its rows in a file of its
own (--processes "" skips them).
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

import h5py
import numpy as np

try:
    import torch
except ImportError:  # the table then says n/a for torch
    torch = None


def make_workload(name, scale):
    """The same trees as ckpt_bench.cpp: nested dicts of float32 arrays,
    plus scalars and strings in W3."""
    rng = np.random.default_rng(1)

    def array(n):
        return (rng.integers(0, 1000, n, dtype=np.int32) * 0.001).astype(np.float32)

    if name == "W1":
        return {f"layer{i}": {f"w{j}": array((4 << 20) // scale) for j in range(8)}
                for i in range(8)}
    if name == "W2":
        return {f"m{i}": {f"p{j}": array(1000) for j in range(100)} for i in range(200)}
    if name == "W3":
        meta = {}
        for i in range(100):
            meta[f"step{i}"] = i * 1000
            meta[f"tag{i}"] = f"run-{i}"
        return {
            "big": {f"emb{i}": array((16 << 20) // scale) for i in range(4)},
            "small": {f"s{i}": array(64 + (i % 7) * 100) for i in range(5000)},
            "meta": meta,
        }
    raise ValueError(name)


def flatten(tree, prefix=""):
    for key, value in tree.items():
        path = f"{prefix}/{key}" if prefix else key
        if isinstance(value, dict):
            yield from flatten(value, path)
        else:
            yield path, value


def settle(path):
    if os.path.isdir(path):
        shutil.rmtree(path)
    elif os.path.exists(path):
        os.remove(path)
    os.sync()


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# ---------------------------------------------------------------- peers

def h5py_save(tree, path):
    with h5py.File(path, "w") as f:
        for key, value in flatten(tree):
            f.create_dataset(key, data=value)


def h5py_load(path):
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda k, v: out.__setitem__(k, v[()])
                     if isinstance(v, h5py.Dataset) else None)
    return out


def npsave_save(tree, path):
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
    out = {}
    for name in os.listdir(path):
        if name.endswith(".npy"):
            out[name] = np.load(os.path.join(path, name))
    with open(os.path.join(path, "scalars.json")) as f:
        out.update(json.load(f))
    return out


def npsavez_save(tree, path):
    np.savez(path, **{k: np.asarray(v) for k, v in flatten(tree)})


def npsavez_load(path):
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def torch_tree(tree):
    return {k: torch_tree(v) if isinstance(v, dict)
            else torch.from_numpy(v) if isinstance(v, np.ndarray) else v
            for k, v in tree.items()}


def torch_save(tree, path):
    torch.save(tree, path)


def torch_load(path):
    return torch.load(path)


PEERS = [
    ("h5py", h5py_save, h5py_load, ".h5"),
    ("numpy.save", npsave_save, npsave_load, ".npy.d"),
    ("numpy.savez", npsavez_save, npsavez_load, ".npz"),
    ("torch.save", torch_save, torch_load, ".pt"),
]


def measure_peers(tree, runs, directory, workload):
    results = {}
    for name, save, load, suffix in PEERS:
        if name.startswith("torch") and torch is None:
            continue
        data = torch_tree(tree) if name.startswith("torch") else tree
        path = os.path.join(directory, f"peer-{workload}{suffix}")
        save_t, load_t = [], []
        for _ in range(runs):
            settle(path)
            save_t.append(timed(lambda: save(data, path)))
            os.sync()
            load_t.append(timed(lambda: load(path)))
        settle(path)
        results[name] = (statistics.median(save_t), statistics.median(load_t))
    return results


# ------------------------------------------------------------------ ckpt

def run_ckpt(binary, args):
    out = subprocess.run([binary] + args, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--scale", type=int, default=1)
    parser.add_argument("--workloads", default="W1,W2,W3")
    parser.add_argument("--dir", default="/tmp/ckpt-bench")
    parser.add_argument("--build", default=os.path.join(
        os.path.dirname(__file__), "..", "..", "build"))
    parser.add_argument("--processes", default="1,2,4")
    parser.add_argument("--mpi-mib", type=int, default=512)
    a = parser.parse_args()
    binary = os.path.join(a.build, "tools", "bench", "ckpt_bench")
    os.makedirs(a.dir, exist_ok=True)
    env_note = f"runs={a.runs} scale={a.scale} cpus={os.cpu_count()}"
    rows = []
    summary = []
    for w in filter(None, a.workloads.split(",")):
        common = ["--workload", w, "--scale", str(a.scale), "--dir", a.dir]
        c = run_ckpt(binary, common + ["--runs", str(a.runs)])
        rss = {mode: run_ckpt(binary, common + ["--rss", mode])["rss_extra_bytes"]
               for mode in ("save", "async", "load")}
        tree = make_workload(w, a.scale)
        peers = measure_peers(tree, a.runs, a.dir, w)
        del tree
        size = c["bytes"]
        rw, rr = c["raw_write"], c["raw_read"]
        rows.append((w, "raw write()/read()", rw, rr, rw, rr))
        rows.append((w, "raw + fsync", c["raw_write_fsync"], None, rw, rr))
        rows.append((w, "ckpt", c["ckpt_save"], c["ckpt_load"], rw, rr))
        rows.append((w, "ckpt, no integrity records", None, c["ckpt_load_unchecked"], rw, rr))
        rows.append((w, "ckpt + fsync", c["ckpt_save_fsync"], None, rw, rr))
        rows.append((w, "ckpt, immutable arrays", c["ckpt_save_immutable"], None, rw, rr))
        rows.append((w, "ckpt async (blocking)", c["ckpt_async_blocking"], None, rw, rr))
        rows.append((w, "memcpy of the data", c["memcpy"], None, rw, rr))
        for name, (s, l) in peers.items():
            rows.append((w, name, s, l, rw, rr))
        summary.append({
            "workload": w, "bytes": size, "arrays": c["arrays"],
            "save_vs_raw": rw / c["ckpt_save"],
            "save_fsync_vs_raw_fsync": c["raw_write_fsync"] / c["ckpt_save_fsync"],
            "load_vs_raw": rr / c["ckpt_load"],
            "integrity_cost": c["integrity_cost"],
            "async_blocking_vs_memcpy": c["ckpt_async_blocking"] / c["memcpy"],
            "rss_extra_save_MiB": rss["save"] / 2**20,
            "rss_extra_async_vs_data": rss["async"] / size,
            "rss_extra_load_vs_data": rss["load"] / size,
            "peers_faster_save": [n for n, (s, _) in peers.items() if s < c["ckpt_save"]],
            "peers_faster_load": [n for n, (_, l) in peers.items() if l < c["ckpt_load"]],
        })

    print(f"pytree benchmark ({env_note}); medians in seconds; x = time / raw time")
    print(f"{'workload':8} {'tool':26} {'save s':>9} {'x raw':>7} {'load s':>9} {'x raw':>7}")
    for w, tool, s, l, rw, rr in rows:
        load = f"{l:9.3f} {l / rr:7.2f}" if l is not None else f"{'':9} {'':7}"
        save = f"{s:9.3f} {s / rw:7.2f}" if s is not None else f"{'':9} {'':7}"
        print(f"{w:8} {tool:26} {save} {load}")
    print()
    for s in summary:
        print(f"{s['workload']}: {s['arrays']} arrays, {s['bytes'] / 1e6:.0f} MB; "
              f"save {s['save_vs_raw']:.2f}x raw throughput, "
              f"fsync'd save {s['save_fsync_vs_raw_fsync']:.2f}x, "
              f"load {s['load_vs_raw']:.2f}x "
              f"(checksum checks {100 * s['integrity_cost']:+.1f}% of a load); "
              f"async blocking = {s['async_blocking_vs_memcpy']:.2f} memcpy; "
              f"extra RSS: save {s['rss_extra_save_MiB']:.0f} MiB, "
              f"async {s['rss_extra_async_vs_data']:.2f}x data, "
              f"load {s['rss_extra_load_vs_data']:.2f}x data; "
              f"peers faster: save {s['peers_faster_save'] or 'none'}, "
              f"load {s['peers_faster_load'] or 'none'}")
    if a.processes:
        print()
        multiprocess_table(a, env_note)
    return 0


def multiprocess_table(a, env_note):
    """The sharded save and load over 1, 2 and 4 processes (ckpt_mpi_bench)."""
    binary = os.path.join(a.build, "tools", "bench", "ckpt_mpi_bench")
    print(f"multi-process sharded save/load of {a.mpi_mib} MiB ({env_note}); "
          "medians; x = time / raw time of the same processes")
    print(f"{'processes':>9} {'save s':>8} {'GB/s':>6} {'x raw':>6} "
          f"{'raw s':>7} {'load s':>8} {'GB/s':>6} {'x raw':>6} {'raw s':>7}")
    for n in a.processes.split(","):
        r = run_ckpt("mpirun", ["--allow-run-as-root", "--oversubscribe", "-np", n,
                                binary, "--mib", str(a.mpi_mib), "--runs",
                                str(a.runs), "--dir", a.dir])
        gb = r["bytes"] / 1e9
        print(f"{r['processes']:>9} {r['ckpt_save']:8.3f} {gb / r['ckpt_save']:6.2f} "
              f"{r['ckpt_save'] / r['raw_write']:6.2f} {r['raw_write']:7.3f} "
              f"{r['ckpt_load']:8.3f} {gb / r['ckpt_load']:6.2f} "
              f"{r['ckpt_load'] / r['raw_read']:6.2f} {r['raw_read']:7.3f}")


if __name__ == "__main__":
    sys.exit(main())
