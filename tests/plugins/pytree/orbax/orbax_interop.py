"""Orbax -> ckpt: Python Orbax saves every case orbax_write_cases.py knows,
and ckpt loads each, three ways, every element compared with what Orbax
saved:
  1. the C++ API (orbax_dump: load_checkpointables, or a Checkpointer over
     a root of steps, with their metrics);
  2. `ckpt cat --json` of each checkpointable (but those of more than
     CAT_MAX_ELEMENTS array elements);
  3. `ckpt convert` to ckpt's own format, then h5py reads each array that
     has a dataset of its own there (arrays below the pack threshold share
     a packed dataset and are covered by 1 and 2).

Then ckpt -> Orbax: each checkpoint again through `ckpt convert --to
orbax`, a ckpt Checkpointer root in Orbax's storage, and (--mpi-save) one
checkpoint saved by 4 MPI processes; the pinned Orbax restores each.

    .venv/bin/python orbax_interop.py --dump BUILD/tests/orbax_dump \
        --ckpt BUILD/tools/ckpt --work DIR [--large] [--keep] \
        [--mpi-save BUILD/tests/orbax_mpi_save --mpirun mpirun]

Prints a line per case and way, then "orbax interop: N passed, N failed"
(a case passes when all three ways match). Runs under the repository's
.venv (tools/setup.sh), which holds the pinned Orbax.
"""
import argparse
import json
import math
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
VENV = os.path.join(HERE, "..", "..", "..", "..", ".venv")
if os.path.realpath(sys.prefix) != os.path.realpath(VENV):
    # Run by any Python (meson's): go on under the repository's .venv.
    python = os.path.join(VENV, "bin", "python")
    if not os.path.exists(python):
        print(f"orbax interop: no {os.path.realpath(VENV)}: make it with "
              "tools/setup.sh's ckpt_python_env (tools/test.sh does)")
        print("orbax interop: 0 passed, 1 failed")
        sys.exit(1)
    os.execv(python, [python] + sys.argv)

import ml_dtypes  # noqa: E402
import numpy as np  # noqa: E402


def dtype_of(name):
    return ml_dtypes.bfloat16 if name == "bfloat16" else np.dtype(name)


def load_array(folder, a):
    data = np.fromfile(os.path.join(folder, a["file"]),
                       dtype=np.dtype(dtype_of(a["dtype"])).newbyteorder("<"))
    return data.reshape(a["shape"])


def scalar_of(spec):
    """The Python value of a scalar spec, or None when it is not one."""
    for k in ("int", "bool", "str"):
        if k in spec:
            return spec[k]
    if "float" in spec:
        v = spec["float"]
        return float(v) if isinstance(v, str) else v
    return None


def same_scalar(a, b):
    if isinstance(a, float) or isinstance(b, float):
        if isinstance(a, bool) or isinstance(b, bool):
            return False
        fa, fb = float(a), float(b)
        return (math.isnan(fa) and math.isnan(fb)) or fa == fb
    return type(a) is type(b) and a == b


def json_to_spec(doc):
    """A JSON document (a JSON checkpointable ckpt loaded) as a spec."""
    if doc is None:
        return {"none": True}
    if isinstance(doc, bool):
        return {"bool": doc}
    if isinstance(doc, int):
        return {"int": doc}
    if isinstance(doc, float):
        return {"float": doc}
    if isinstance(doc, str):
        return {"str": doc}
    if isinstance(doc, dict):
        return {"dict": [[k, json_to_spec(v)] for k, v in doc.items()]}
    return {"list": [json_to_spec(v) for v in doc]}


class Compare:
    """Differences between an expected spec tree and a loaded one."""

    def __init__(self, expected_dir, got_dir):
        self.e_dir, self.g_dir = expected_dir, got_dir
        self.problems = []

    def fail(self, where, text):
        if len(self.problems) < 20:
            self.problems.append(f"{where or '/'}: {text}")

    def tree(self, e, g, where=""):
        if "json" in g:  # a JSON checkpointable: compare its document
            g = json_to_spec(g["json"])
        if "array" in e:
            return self.array(e["array"], g, where)
        if "dict" in e:
            if "dict" not in g:
                return self.fail(where, f"expected a dict, got {list(g)}")
            ed, gd = dict(e["dict"]), dict(g["dict"])
            if set(ed) != set(gd):
                return self.fail(where, f"keys {sorted(gd)} != {sorted(ed)}")
            for k in ed:
                self.tree(ed[k], gd[k], f"{where}/{k}")
            return None
        if "list" in e:
            if "list" not in g or len(g["list"]) != len(e["list"]):
                return self.fail(where, f"expected a list of {len(e['list'])}")
            for k, (ec, gc) in enumerate(zip(e["list"], g["list"])):
                self.tree(ec, gc, f"{where}/{k}")
            return None
        if "none" in e:
            if "none" not in g:
                self.fail(where, f"expected None, got {g}")
            return None
        ev = scalar_of(e)
        if "array" in g and g["array"]["shape"] == []:
            # A scalar may come back as a 0-d array of its value.
            gv = load_array(self.g_dir, g["array"]).item()
        else:
            gv = scalar_of(g)
        if gv is None or not same_scalar(ev, gv):
            self.fail(where, f"expected {e}, got {g}")
        return None

    def array(self, ea, g, where):
        if "array" not in g:
            if ea["shape"] == [] and scalar_of(g) is not None:
                ev = load_array(self.e_dir, ea).item()
                if same_scalar(ev, scalar_of(g)):
                    return None
            return self.fail(where, f"expected a {ea['dtype']} array, got {g}")
        ga = g["array"]
        if (ga["dtype"], ga["shape"]) != (ea["dtype"], ea["shape"]):
            return self.fail(where, f"{ga['dtype']}{ga['shape']} != "
                             f"{ea['dtype']}{ea['shape']}")
        eb = open(os.path.join(self.e_dir, ea["file"]), "rb").read()
        gb = open(os.path.join(self.g_dir, ga["file"]), "rb").read()
        if eb != gb:
            self.fail(where, "elements differ")
        return None


def cat_matches(expected_dir, spec, got, where, problems):
    """`ckpt cat --json` output `got` against spec (arrays as nested lists,
    non-finite numbers as null, complex as [re, im])."""
    if "array" in spec:
        a = load_array(expected_dir, spec["array"])
        if a.ndim == 0 and not isinstance(got, list):
            flat_got = [got]
        else:
            flat_got = np.array(got, dtype=object).reshape(-1).tolist() \
                if a.size else []
        if a.dtype.kind == "c":
            flat_got = [complex(*v) if v is not None and None not in v
                        else None for v in
                        np.array(got, dtype=object).reshape(-1, 2).tolist()] \
                if a.size else []
        flat_e = a.reshape(-1).tolist() if a.dtype != ml_dtypes.bfloat16 \
            else a.astype(np.float32).reshape(-1).tolist()
        if len(flat_e) != len(flat_got):
            problems.append(f"{where}: {len(flat_got)} elements, not {len(flat_e)}")
            return
        for x, y in zip(flat_e, flat_got):
            if y is None:
                finite = (math.isfinite(x.real) and math.isfinite(x.imag)) \
                    if isinstance(x, complex) else \
                    (not isinstance(x, float) or math.isfinite(x))
                if finite:
                    problems.append(f"{where}: null for {x}")
                    return
            elif isinstance(x, complex):
                if not (isinstance(y, complex) and _same_complex(x, y)):
                    problems.append(f"{where}: {y} != {x}")
                    return
            elif x != y:
                problems.append(f"{where}: {y} != {x}")
                return
    elif "dict" in spec:
        if not isinstance(got, dict) or set(got) != {k for k, _ in spec["dict"]}:
            problems.append(f"{where}: keys differ")
            return
        for k, s in spec["dict"]:
            cat_matches(expected_dir, s, got[k], f"{where}/{k}", problems)
    elif "list" in spec:
        if not isinstance(got, list) or len(got) != len(spec["list"]):
            problems.append(f"{where}: not a list of {len(spec['list'])}")
            return
        for k, s in enumerate(spec["list"]):
            cat_matches(expected_dir, s, got[k], f"{where}/{k}", problems)
    elif "none" in spec:
        if got is not None:
            problems.append(f"{where}: {got} is not None")
    else:
        ev = scalar_of(spec)
        if got is None and isinstance(ev, float) and not math.isfinite(ev):
            return
        if isinstance(got, list) and len(got) == 1:
            got = got[0]
        if not same_scalar(ev, got):
            problems.append(f"{where}: {got} != {ev}")


def _same_complex(x, y):
    def same(a, b):
        return (math.isnan(a) and math.isnan(b)) or a == b
    return same(x.real, y.real) and same(x.imag, y.imag)


def h5py_matches(expected_dir, spec, h5, path, problems, counts):
    """Each array that has a dataset of its own at its key path in h5."""
    if "array" in spec:
        if path not in h5:
            counts["packed"] += 1
            return
        got = h5[path][()]
        e = load_array(expected_dir, spec["array"])
        if e.dtype == ml_dtypes.bfloat16:
            got = np.asarray(got).view(ml_dtypes.bfloat16) \
                if got.dtype == np.uint16 else got
        got = np.asarray(got)
        if got.shape != e.shape or got.tobytes() != e.astype(
                e.dtype.newbyteorder("=")).tobytes():
            problems.append(f"h5py {path}: differs ({got.dtype}{got.shape})")
        counts["read"] += 1
    elif "dict" in spec:
        for k, s in spec["dict"]:
            h5py_matches(expected_dir, s, h5, f"{path}/{k}", problems, counts)
    elif "list" in spec:
        for k, s in enumerate(spec["list"]):
            h5py_matches(expected_dir, s, h5, f"{path}/{k}", problems, counts)


def run(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, **kw)


# What the 2 GiB case writes at most at once: Orbax's checkpoint, ckpt's
# conversions both ways and the arrays each way of loading dumps.
LARGE_DISK_BYTES = 16 << 30

# `ckpt cat --json` prints every element, about 20 bytes of text each: a
# checkpointable of more elements (the 2 GiB case) is checked by the other
# two ways only, which compare the same elements without a text of them.
CAT_MAX_ELEMENTS = 1 << 24


def count_elements(spec):
    """The array elements a spec holds."""
    if "array" in spec:
        return math.prod(spec["array"]["shape"])
    items = spec.get("dict", []) or []
    children = [v for _, v in items] + (spec.get("list", []) or [])
    return sum(count_elements(c) for c in children)


def check_checkpoint(a, path, expected_dir, expected, got_dir, problems):
    """The three ways for one checkpoint folder; `expected` its spec."""
    r = run([a.dump, "checkpoint", path, got_dir])
    if r.returncode != 0:
        problems.append(f"orbax_dump failed: {r.stderr.strip()[-400:]}")
        return
    got = json.load(open(os.path.join(got_dir, "spec.json")))
    if "error" in got:
        problems.append(f"C++ API: {got['error']['kind']}: "
                        f"{got['error']['message'][:400]}")
        return
    c = Compare(expected_dir, got_dir)
    for name, spec in expected["checkpointables"].items():
        if name not in got["checkpointables"]:
            problems.append(f"C++ API: no checkpointable '{name}' "
                            f"(got {sorted(got['checkpointables'])})")
            continue
        c.tree(spec, got["checkpointables"][name], name)
    problems += [f"C++ API: {p}" for p in c.problems]
    for name, spec in expected["checkpointables"].items():
        if count_elements(spec) > CAT_MAX_ELEMENTS:
            continue  # counted in the C++ API and h5py ways
        r = run([a.ckpt, "cat", "--json", path, name])
        if r.returncode != 0:
            problems.append(f"ckpt cat {name}: {r.stderr.strip()[-300:]}")
            continue
        cat_problems = []
        cat_matches(expected_dir, spec, json.loads(r.stdout), name, cat_problems)
        problems += [f"ckpt cat: {p}" for p in cat_problems[:5]]
    converted = got_dir + ".converted"
    shutil.rmtree(converted, ignore_errors=True)
    r = run([a.ckpt, "convert", path, converted])
    if r.returncode != 0:
        problems.append(f"ckpt convert: {r.stderr.strip()[-300:]}")
        return
    import h5py
    counts = {"read": 0, "packed": 0}
    for name, spec in expected["checkpointables"].items():
        h5_path = os.path.join(converted, name, "arrays.h5")
        if not os.path.exists(h5_path):
            continue  # not a pytree (JSON): nothing for h5py
        with h5py.File(h5_path, "r") as h5:
            h5py_problems = []
            h5py_matches(expected_dir, spec, h5, "", h5py_problems, counts)
            problems += h5py_problems[:5]
    return counts


def prune(expected, got):
    """`expected` without the dict entries `got` lacks (a partial load)."""
    if "dict" in expected and "dict" in got:
        have = dict(got["dict"])
        return {"dict": [[k, prune(v, have[k])] for k, v in expected["dict"]
                         if k in have]}
    if "list" in expected and "list" in got and \
            len(expected["list"]) == len(got["list"]):
        return {"list": [prune(e, g) for e, g in
                         zip(expected["list"], got["list"])]}
    return expected


def count_leaves(spec):
    if "dict" in spec:
        return sum(count_leaves(v) for _, v in spec["dict"])
    if "list" in spec:
        return sum(count_leaves(v) for v in spec["list"])
    return 1


def check_to_orbax(a, path, expected_dir, expected, work):
    """ckpt -> Orbax: `ckpt convert --to orbax` of the checkpoint, then
    orbax_restores of what it wrote. Returns (problems, ways restored)."""
    converted = work + ".to_orbax"
    shutil.rmtree(converted, ignore_errors=True)
    r = run([a.ckpt, "convert", "--to", "orbax", path, converted])
    if r.returncode != 0:
        return [f"ckpt convert --to orbax: {r.stderr.strip()[-300:]}"], 0
    return orbax_restores(converted, expected_dir, expected, work)


def orbax_restores(checkpoint, expected_dir, expected, work):
    """The pinned Orbax restores each pytree of `checkpoint` (ckpt wrote it
    in Orbax's storage) three ways (plain, into a sharding the saver never
    had, a partial load), compared with what was saved. Returns (problems,
    ways restored)."""
    problems, ways = [], 0
    for name, spec in expected["checkpointables"].items():
        if not os.path.exists(os.path.join(checkpoint, name,
                                           "manifest.ocdbt")):
            continue  # not a pytree: Orbax's pytree loader has no part
        out = work + f".restored.{name}"
        shutil.rmtree(out, ignore_errors=True)
        r = run([sys.executable, os.path.join(HERE, "orbax_restore.py"),
                 checkpoint, name, out, "--how", "plain,sharded,partial"])
        if r.returncode != 0:
            problems.append(f"orbax_restore.py {name}: {r.stderr.strip()[-400:]}")
            continue
        for how in ("plain", "sharded", "partial"):
            got = json.load(open(os.path.join(out, how, "spec.json")))
            if "error" in got:
                problems.append(f"Orbax {how} restore of {name}: {got['error']}")
                continue
            g = got["checkpointables"][name]
            e = spec
            if how == "partial":
                e = prune(spec, g)
                if count_leaves(g) >= count_leaves(spec) > 1:
                    problems.append(f"Orbax partial restore of {name} "
                                    "returned every leaf")
            c = Compare(expected_dir, os.path.join(out, how))
            c.tree(e, g, name)
            problems += [f"Orbax {how} restore: {p}" for p in
                         got["problems"][:5] + c.problems[:5]]
            ways += 1
    return problems, ways


def check_mpi_to_orbax(a):
    """ckpt -> Orbax from many processes: 4 MPI processes save sharded
    arrays (and replicated ones, scalars, a string) into one checkpoint in
    Orbax's storage; one Orbax process restores it three ways, ckpt loads
    it three ways (check_checkpoint), and `ckpt verify` passes. Returns
    (problems, ways)."""
    path = os.path.join(a.work, "mpi_sharded")
    expected_dir = path + ".expected"
    r = run([a.mpirun, "--allow-run-as-root", "--oversubscribe", "-np", "4",
             a.mpi_save, path, expected_dir],
            env=dict(os.environ, ASAN_OPTIONS="detect_leaks=0"))
    if r.returncode != 0:
        return [f"orbax_mpi_save: {(r.stdout + r.stderr).strip()[-600:]}"], 0
    expected = json.load(open(os.path.join(expected_dir, "spec.json")))
    processes = sorted(d for d in os.listdir(os.path.join(path, "state"))
                       if d.startswith("ocdbt.process_"))
    problems = []
    if len(processes) != 4:
        problems.append(f"sub-databases {processes}, not one per process")
    r = run([a.ckpt, "verify", path])
    if r.returncode != 0:
        problems.append(f"ckpt verify: {(r.stdout + r.stderr).strip()[-300:]}")
    got_dir = os.path.join(a.work, "got", "mpi_sharded")
    check_checkpoint(a, path, expected_dir, expected, got_dir, problems)
    back, ways = orbax_restores(path, expected_dir, expected, got_dir)
    return problems + back, ways


def compare_checkpointer(expected, got):
    """Problems between two roots of steps in orbax_dump's checkpointer
    format, but the steps' contents."""
    problems = []
    steps = [s["step"] for s in got["steps"]]
    want = [s["step"] for s in expected["steps"]]
    if steps != want or got["latest"] != expected["latest"]:
        problems.append(f"steps {steps} (latest {got['latest']}), "
                        f"not {want} (latest {expected['latest']})")
    if "root_metadata" in expected and \
            got.get("root_metadata") != expected["root_metadata"]:
        problems.append(f"root metadata {got.get('root_metadata')} != "
                        f"{expected['root_metadata']}")
    for e_step in expected["steps"]:
        g_step = next((s for s in got["steps"]
                       if s["step"] == e_step["step"]), None)
        if g_step is not None and e_step["metrics"] is not None and \
                g_step["metrics"] != e_step["metrics"]:
            problems.append(f"step {e_step['step']}: metrics "
                            f"{g_step['metrics']} != {e_step['metrics']}")
    return problems


def check_checkpointer_to_orbax(a):
    """ckpt -> Orbax for a root: a ckpt Checkpointer saves steps with
    metrics and root metadata in Orbax's storage, keeping the latest 3;
    ocp.training.Checkpointer lists the same steps, metrics and metadata
    and restores every step, element for element."""
    root = os.path.join(a.work, "ckpt_checkpointer")
    expected_dir = root + ".expected"
    r = run([a.dump, "save-checkpointer", root, expected_dir])
    if r.returncode != 0:
        return [f"orbax_dump save-checkpointer: {r.stderr.strip()[-300:]}"]
    out = root + ".restored"
    r = run([sys.executable, os.path.join(HERE, "orbax_restore.py"),
             root, "-", out, "--how", "checkpointer"])
    if r.returncode != 0:
        return [f"orbax_restore.py: {r.stderr.strip()[-400:]}"]
    got_dir = os.path.join(out, "checkpointer")
    got = json.load(open(os.path.join(got_dir, "spec.json")))
    if "error" in got:
        return [f"Orbax's Checkpointer: {got['error']}"]
    expected = json.load(open(os.path.join(expected_dir, "spec.json")))
    problems = compare_checkpointer(expected, got)
    for e_step in expected["steps"]:
        g_step = next((s for s in got["steps"]
                       if s["step"] == e_step["step"]), None)
        if g_step is None:
            continue
        c = Compare(expected_dir, got_dir)
        c.tree(e_step["content"]["checkpointables"]["state"],
               g_step["content"]["checkpointables"]["state"],
               f"step {e_step['step']}")
        problems += c.problems[:5]
    return problems


def check_case(a, case):
    name = case["name"]
    path = os.path.join(a.work, name)
    expected_dir = path + ".expected"
    expected = json.load(open(os.path.join(expected_dir, "spec.json")))
    got_dir = os.path.join(a.work, "got", name)
    shutil.rmtree(got_dir, ignore_errors=True)
    problems = []
    counts = back = None
    if case["kind"] == "checkpoint":
        counts = check_checkpoint(a, path, expected_dir, expected, got_dir,
                                  problems)
        back = check_to_orbax(a, path, expected_dir, expected, got_dir)
    else:
        r = run([a.dump, "checkpointer", path, got_dir])
        got = json.load(open(os.path.join(got_dir, "spec.json"))) \
            if r.returncode == 0 else {"error": {"kind": "crash",
                                                 "message": r.stderr}}
        if "error" in got:
            problems.append(f"Checkpointer: {got['error']['message'][:400]}")
        else:
            problems += compare_checkpointer(expected, got)
            for e_step in expected["steps"]:
                g_step = next((s for s in got["steps"]
                               if s["step"] == e_step["step"]), None)
                if g_step is None:
                    continue
                step_path = g_step["path"]
                sub = []
                check_checkpoint(a, step_path, expected_dir, e_step["content"],
                                 got_dir + f".step{e_step['step']}", sub)
                problems += [f"step {e_step['step']}: {p}" for p in sub]
    return problems, counts, back


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dump", required=True)
    parser.add_argument("--ckpt", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--large", action="store_true")
    parser.add_argument("--only-large", action="store_true",
                        help="only the case of one array over 2 GiB; "
                        "skipped (exit 77) without the disk it needs")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--mpi-save", help="orbax_mpi_save: adds the case "
                        "of a save by 4 MPI processes")
    parser.add_argument("--mpirun", default="mpirun")
    a = parser.parse_args()
    shutil.rmtree(a.work, ignore_errors=True)
    os.makedirs(a.work)
    if a.only_large:
        free = shutil.disk_usage(a.work).free
        if free < LARGE_DISK_BYTES:
            print(f"orbax interop: the 2 GiB case skipped: {free >> 30} GiB "
                  f"free in {a.work}, it writes up to {LARGE_DISK_BYTES >> 30}")
            return 77
    gen = [sys.executable, os.path.join(HERE, "orbax_write_cases.py"), a.work]
    if a.large:
        gen.append("--large")
    if a.only_large:
        gen.append("--only-large")
    r = run(gen)
    print(r.stdout.strip())
    if r.returncode != 0:
        print(r.stderr[-3000:])
        print("orbax_write_cases.py failed")
        print("orbax interop: 0 passed, 1 failed")
        return 1
    cases = json.load(open(os.path.join(a.work, "cases.json")))
    passed = failed = 0
    for case in cases:
        problems, counts, back = check_case(a, case)
        if back is not None:
            back_problems, ways = back
            if back_problems or ways == 0:
                failed += 1
                print(f"ckpt -> orbax {case['name']}: FAILED")
                for p in (back_problems or ["no pytree restored"])[:12]:
                    print(f"    {p}")
            else:
                passed += 1
                print(f"ckpt -> orbax {case['name']}: ok ({ways} restores)")
        extra = f" (h5py read {counts['read']} arrays, {counts['packed']} packed)" \
            if counts else ""
        if problems:
            failed += 1
            print(f"orbax -> ckpt {case['name']}: FAILED ({case['note']})")
            for p in problems[:12]:
                print(f"    {p}")
        else:
            passed += 1
            print(f"orbax -> ckpt {case['name']}: ok{extra}")
    if a.mpi_save and not a.only_large:
        problems, ways = check_mpi_to_orbax(a)
        if problems or ways == 0:
            failed += 1
            print("ckpt -> orbax mpi_4_processes: FAILED")
            for p in (problems or ["no pytree restored"])[:12]:
                print(f"    {p}")
        else:
            passed += 1
            print(f"ckpt -> orbax mpi_4_processes: ok ({ways} restores by "
                  "one Orbax process; ckpt loads it back three ways)")
    if not a.only_large:
        problems = check_checkpointer_to_orbax(a)
        if problems:
            failed += 1
            print("ckpt -> orbax checkpointer_root: FAILED")
            for p in problems[:12]:
                print(f"    {p}")
        else:
            passed += 1
            print("ckpt -> orbax checkpointer_root: ok (ocp.training."
                  "Checkpointer listed steps, metrics, root metadata and "
                  "restored each step)")
    if not a.keep and failed == 0:
        shutil.rmtree(a.work, ignore_errors=True)
    print(f"orbax interop: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
