#!/usr/bin/python3
"""The pytree benchmark: ckpt against the raw limit (write()/read() of the
same bytes), h5py, numpy.save, numpy.savez and torch.save/torch.load.

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
import resource
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))

# ------------------------------------------------------------- workloads


def filled(n, seed):
    """ckpt_bench.cpp's elements, bit for bit."""
    import numpy as np
    x = np.arange(n, dtype=np.uint32) * np.uint32(2654435761)
    x += np.uint32((seed * 40503) & 0xFFFFFFFF)
    return (x % np.uint32(1000)).astype(np.float32) * np.float32(0.001)


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


PEERS = {
    "h5py": (h5py_save, h5py_load, ".h5"),
    "numpy.save": (npsave_save, npsave_load, ".npy.d"),
    "numpy.savez": (npsavez_save, npsavez_load, ".npz"),
    "torch.save": (torch_save, torch_load, ".pt"),
}


def have_torch():
    try:
        import torch  # noqa: F401
        return True
    except ImportError:
        return False


def peak_rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def reset_peak_rss():
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def run_peer_step(a):
    """One timed step of one peer in this (fresh) process; prints JSON."""
    save, load, suffix = PEERS[a.peer]
    path = os.path.join(a.dir, f"peer-{a.workload}{suffix}")
    # The peer's modules are imported before the clock starts.
    import numpy  # noqa: F401
    if a.peer == "h5py":
        import h5py  # noqa: F401
    if a.peer.startswith("torch"):
        import torch  # noqa: F401
    if a.peer_step == "save":
        tree = make_workload(a.workload, a.scale)
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.exists(path):
            os.remove(path)
        os.sync()
        gc.collect()
        reset_peak_rss()
        before = peak_rss()
        start = time.perf_counter()
        save(tree, path)
    else:
        os.sync()
        reset_peak_rss()
        before = peak_rss()
        start = time.perf_counter()
        loaded = load(path)  # noqa: F841
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "rss_extra_bytes": peak_rss() - before}))


# ------------------------------------------------------------ the plan

# The raw limit's variants: (memory, threads). "mapped" is memory the
# caller already holds (its own buffers): the limit of loads into them.
FRESH = [(m, t) for m in ("plain", "populated", "huge") for t in (1, 2)]
MAPPED = [("mapped", 1), ("mapped", 2)]


def plan_round(workload, peers, round_number):
    """The processes of one round, in order: (row, step, cpp args) for the
    C++ half and (row, step, peer) for the peers. A load follows the save
    of its tool that wrote what it reads. The two fsync'd saves come first,
    one after the other, the first of them alternating between rounds: a
    virtual disk still flushing what came before slows whichever runs
    first."""
    fsyncs = [("ckpt + fsync", "save", ["--step", "save_fsync"]),
              ("raw + fsync", "save", ["--step", "raw_write_fsync"])]
    if round_number % 2:
        fsyncs.reverse()
    steps = fsyncs + [
        (None, None, ["--step", "remove_raw"]),
        ("ckpt, immutable arrays", "save", ["--step", "save_immutable"]),
        ("ckpt async (blocking)", "save", ["--step", "async"]),
        ("ckpt", "save", ["--step", "save"]),
        ("ckpt", "load", ["--step", "load"]),
        (None, None, ["--step", "prepare_unchecked"]),
        ("ckpt, no integrity records", "load", ["--step", "load_unchecked"]),
        ("ckpt into your buffers", "load", ["--step", "load_into"]),
    ]
    if workload == "W4":
        steps.append(("ckpt, 1% of the arrays", "load", ["--step", "load_partial"]))
    steps.append((None, None, ["--step", "remove_ckpt"]))
    steps += [
        (("raw write", "plain", 2), "save", ["--step", "raw_write", "--threads", "2"]),
        (("raw write", "plain", 1), "save", ["--step", "raw_write"]),
    ]
    for m, t in FRESH + MAPPED:
        steps.append((("raw read", m, t), "load",
                      ["--step", "raw_read", "--memory", m, "--threads", str(t)]))
    if workload == "W4":
        for m, t in FRESH:
            steps.append((("raw read 1%", m, t), "load",
                          ["--step", "raw_read_partial", "--memory", m,
                           "--threads", str(t)]))
    steps.append((None, None, ["--step", "remove_raw"]))
    for m, t in FRESH:
        steps.append((("memcpy", m, t), "save",
                      ["--step", "memcpy", "--memory", m, "--threads", str(t)]))
    plan = [("cpp", row, step, args) for row, step, args in steps]
    # W4 shows how ckpt's cost grows with size and with what is asked for,
    # against the raw limit; the peers' rows are those of W1.
    for peer in (peers if workload != "W4" else []):
        plan.append(("peer", peer, "save", peer))
        plan.append(("peer", peer, "load", peer))
    return plan


def run_json(argv):
    out = subprocess.run(argv, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(a, workload, peers):
    """samples[(row, step)] = list of {"seconds", "rss_extra_bytes", ...}."""
    binary = os.path.join(a.build, "tools", "bench", "ckpt_bench")
    common = ["--workload", workload, "--scale", str(a.scale), "--dir", a.dir]
    samples = {}
    info = {}
    for r in range(a.runs):
        for kind, row, step, args in plan_round(workload, peers, r):
            if kind == "cpp":
                result = run_json([binary] + common + args)
                if row is None:
                    continue
                info.setdefault("bytes", result.get("bytes"))
                info.setdefault("arrays", result.get("arrays"))
            else:
                result = run_json([sys.executable, __file__, "--peer", args,
                                   "--peer-step", step] + common)
            samples.setdefault((row, step), []).append(result)
        print(f"  {workload}: round {r + 1} of {a.runs} done", file=sys.stderr)
    for path in os.listdir(a.dir):
        if workload in path:
            full = os.path.join(a.dir, path)
            shutil.rmtree(full) if os.path.isdir(full) else os.remove(full)
    return samples, info


def med(samples, key="seconds"):
    return statistics.median(s[key] for s in samples)


def best_variant(samples, name, step):
    """(median seconds, label) of the fastest variant of raw `name`."""
    best = None
    for (row, s), values in samples.items():
        if isinstance(row, tuple) and row[0] == name and s == step:
            m = med(values)
            if best is None or m < best[0]:
                best = (m, f"{name} ({row[1]}, {row[2]} thread{'s' if row[2] > 1 else ''})")
    return best


def summarize(workload, samples, info, peers):
    """The table rows and the figures the targets need."""
    if workload == "W4":
        peers = []
    raw_w, raw_w_label = best_variant(samples, "raw write", "save")
    fresh = {k: v for k, v in samples.items()
             if not (isinstance(k[0], tuple) and k[0][1] == "mapped")}
    raw_r, raw_r_label = best_variant(fresh, "raw read", "load")
    mapped = {k: v for k, v in samples.items()
              if isinstance(k[0], tuple) and k[0][1] == "mapped"}
    raw_m, raw_m_label = best_variant(mapped, "raw read", "load")
    copy, copy_label = best_variant(samples, "memcpy", "save")
    s = {"workload": workload, "bytes": info["bytes"], "arrays": info["arrays"],
         "raw_write": raw_w, "raw_write_label": raw_w_label,
         "raw_write_fsync": med(samples[("raw + fsync", "save")]),
         "raw_read": raw_r, "raw_read_label": raw_r_label,
         "raw_read_mapped": raw_m, "raw_read_mapped_label": raw_m_label,
         "memcpy": copy, "memcpy_label": copy_label}
    for row, key in [("ckpt", "ckpt"), ("ckpt + fsync", "ckpt_fsync"),
                     ("ckpt, immutable arrays", "ckpt_immutable"),
                     ("ckpt async (blocking)", "ckpt_async")]:
        s[key + "_save"] = med(samples[(row, "save")])
        s[key + "_save_rss"] = med(samples[(row, "save")], "rss_extra_bytes")
    for row, key in [("ckpt", "ckpt"), ("ckpt, no integrity records", "ckpt_unchecked"),
                     ("ckpt into your buffers", "ckpt_into")]:
        s[key + "_load"] = med(samples[(row, "load")])
        s[key + "_load_rss"] = med(samples[(row, "load")], "rss_extra_bytes")
    if ("ckpt, 1% of the arrays", "load") in samples:
        s["ckpt_partial_load"] = med(samples[("ckpt, 1% of the arrays", "load")])
        s["raw_read_partial"], s["raw_read_partial_label"] = best_variant(
            samples, "raw read 1%", "load")
    s["peers"] = {p: {"save": med(samples[(p, "save")]),
                      "load": med(samples[(p, "load")]),
                      "save_rss": med(samples[(p, "save")], "rss_extra_bytes"),
                      "load_rss": med(samples[(p, "load")], "rss_extra_bytes")}
                  for p in peers}
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
    return rows, s


def targets(s):
    """(target, measured, met) for workload summary `s` (issue 13)."""
    w = s["workload"]
    out = []

    def add(text, value, fmt, ok):
        out.append((f"{w} {text}", fmt.format(value), ok))

    save_tp = s["raw_write"] / s["ckpt_save"]
    load_tp = s["raw_read"] / s["ckpt_load"]
    faster_load = all(s["ckpt_load"] < p["load"] for p in s["peers"].values())
    faster_save = all(s["ckpt_save"] < p["save"] for p in s["peers"].values())
    if w in ("W1", "W4"):
        add("save >= 0.9x raw write throughput", save_tp, "{:.2f}x", save_tp >= 0.9)
        fs = s["raw_write_fsync"] / s["ckpt_fsync_save"]
        add("fsync'd save >= 0.9x raw + fsync", fs, "{:.2f}x", fs >= 0.9)
        add("load >= 0.9x the read limit", load_tp, "{:.2f}x", load_tp >= 0.9)
        into = s["raw_read_mapped"] / s["ckpt_into_load"]
        add("load into your buffers >= 0.9x read() into mapped buffers", into,
            "{:.2f}x", into >= 0.9)
    if w == "W1":
        add("load faster than every peer", faster_load, "{}", faster_load)
    if w in ("W2", "W3"):
        ratio = s["ckpt_save"] / s["raw_write"]
        add("save <= 1.3x raw", ratio, "{:.2f}x", ratio <= 1.3)
        ratio = s["ckpt_load"] / s["raw_read"]
        add("load <= 1.5x raw", ratio, "{:.2f}x", ratio <= 1.5)
    if w == "W3":
        add("save faster than every peer", faster_save, "{}", faster_save)
        add("load faster than every peer", faster_load, "{}", faster_load)
    if w in ("W1", "W2", "W3"):
        ratio = s["ckpt_async_save"] / s["memcpy"]
        add("async blocking tier <= 1.2x one memcpy", ratio, "{:.2f}x", ratio <= 1.2)
        ratio = s["ckpt_async_save_rss"] / s["bytes"]
        add("async save extra memory <= 1.1x the data", ratio, "{:.2f}x", ratio <= 1.1)
        ratio = s["ckpt_load_rss"] / s["bytes"]
        add("load extra memory <= 1.1x the data", ratio, "{:.2f}x", ratio <= 1.1)
    if w == "W4":
        ratio = s["ckpt_partial_load"] / s["ckpt_load"]
        add("1% partial load ~ 1% of a full load", ratio * 100, "{:.1f}%",
            ratio <= 0.03)
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


def print_targets(tables):
    print()
    print("targets (issue 13):")
    for s, _ in tables:
        for text, measured, ok in targets(s):
            print(f"  {text:62} {measured:>8}  {'met' if ok else 'MISSED'}")


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
    tools = ["raw limit", "ckpt", "h5py", "numpy.save", "numpy.savez", "torch.save"]
    colors = ["#777777", "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#d62728"]
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
                      binary, "--mib", str(a.mpi_mib), "--runs", str(a.runs),
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
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--scale", type=int, default=1)
    parser.add_argument("--workloads", default="W1,W2,W3")
    parser.add_argument("--dir", default="/tmp/ckpt-bench")
    parser.add_argument("--build", default=os.path.join(HERE, "..", "..", "build"))
    parser.add_argument("--out", default=os.path.join(HERE, "results"),
                        help="writes OUT.json and OUT.png")
    parser.add_argument("--processes", default="1,2,4")
    parser.add_argument("--mpi-mib", type=int, default=512)
    # Internal: one step of one peer, in a fresh process.
    parser.add_argument("--peer", help=argparse.SUPPRESS)
    parser.add_argument("--peer-step", help=argparse.SUPPRESS)
    parser.add_argument("--workload", help=argparse.SUPPRESS)
    a = parser.parse_args()
    if a.peer:
        run_peer_step(a)
        return 0
    os.makedirs(a.dir, exist_ok=True)
    note = f"runs={a.runs} scale={a.scale} cpus={os.cpu_count()}"
    peers = [p for p in PEERS if have_torch() or not p.startswith("torch")]
    tables = []
    raw = {}
    for w in filter(None, a.workloads.split(",")):
        samples, info = measure(a, w, peers)
        rows, s = summarize(w, samples, info, peers)
        tables.append((s, rows))
        raw[w] = {f"{row}|{step}" if not isinstance(row, tuple)
                  else f"{'/'.join(map(str, row))}|{step}": v
                  for (row, step), v in samples.items()}
    print_table(tables, note)
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
