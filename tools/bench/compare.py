"""bench.py --compare REV: this build against another revision's.

REV is built beside this checkout (a git worktree beside the scratch folder,
configured without tests; kept, so a second comparison reuses it), then
the two builds' ckpt_bench take turns step by step: every step of a round
runs once for each build, the first of the two alternating, each from the
same fixed state (state.settle) and in its own scratch folder. Printed per
step: both medians and the ratio (this build / REV) with its bootstrap 95%
interval; "faster" or "slower" only when it holds across rounds.
"""
import json
import os
import subprocess
import sys

import verdict
from state import run_measured, settle

# The steps compared: the ckpt rows that a change to the library moves.
STEPS = [("save", "save"), ("async", "save_async (blocking tier)"),
         ("load", "load"), ("load_into", "load into your buffers")]


def _git(repo, *args):
    return subprocess.run(["git", "-C", repo] + list(args), check=True,
                          capture_output=True, text=True).stdout.strip()


def build_revision(repo, rev, scratch):
    """The build folder of `rev` (built when missing). The worktree lies
    beside the scratch folder, not in it: settle() drops the scratch
    folder's page cache before every step, and must not drop REV's own
    libraries, which would then fault back in inside its timed steps."""
    sha = _git(repo, "rev-parse", "--verify", rev + "^{commit}")
    tree = os.path.abspath(scratch).rstrip("/") + f"-rev-{sha[:12]}"
    build = os.path.join(tree, "build")
    binary = os.path.join(build, "tools", "bench", "ckpt_bench")
    if not os.path.isdir(tree):
        print(f"compare: checking out {rev} ({sha[:12]}) in {tree}",
              file=sys.stderr)
        _git(repo, "worktree", "add", "--detach", tree, sha)
    if not os.path.exists(binary):
        print(f"compare: building {rev} in {build}", file=sys.stderr)
        configured = False
        # -Dtests is a feature from this revision on, a boolean before.
        for tests in ("disabled", "false"):
            r = subprocess.run(["meson", "setup", build, tree,
                                "--buildtype=debugoptimized", f"-Dtests={tests}"],
                               capture_output=True, text=True)
            if r.returncode == 0:
                configured = True
                break
        if not configured:
            raise SystemExit(f"compare: cannot configure {rev}:\n{r.stdout}{r.stderr}")
        subprocess.run(["ninja", "-C", build], check=True,
                       stdout=subprocess.DEVNULL)
    return build, sha


def compare_revisions(a, workloads, primer_of, perf):
    repo = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    other_build, sha = build_revision(repo, a.compare, a.dir)
    here = _git(repo, "rev-parse", "--short=12", "HEAD")
    dirty = " + uncommitted changes" if _git(repo, "status", "--porcelain",
                                              "--untracked-files=no") else ""
    builds = {"this": os.path.abspath(a.build), "rev": other_build}
    results = []
    for w in workloads:
        samples = {(step, who): [] for step, _ in STEPS for who in builds}
        for r in range(a.runs or 5):
            for k, (step, _) in enumerate(STEPS):
                order = ["this", "rev"] if (r + k) % 2 == 0 else ["rev", "this"]
                for who in order:
                    scratch = os.path.join(a.dir, who)
                    os.makedirs(scratch, exist_ok=True)
                    base = os.path.join(scratch, f"ckpt-{w}")
                    inputs = [base] if step.startswith("load") else []
                    settle(a.dir, a.cache, inputs)
                    argv = [os.path.join(builds[who], "tools", "bench", "ckpt_bench"),
                            "--workload", w, "--scale", str(a.scale),
                            "--dir", scratch, "--step", step]
                    env = dict(os.environ, CKPT_BENCH_PRIMER_BYTES=str(primer_of(w)))
                    stdout, _ = run_measured(argv, env, perf)
                    samples[(step, who)].append(
                        json.loads(stdout.strip().splitlines()[-1])["seconds"])
            print(f"  compare {w}: round {r + 1} of {a.runs or 5} done", file=sys.stderr)
        for step, label in STEPS:
            c = verdict.compare(samples[(step, "this")], samples[(step, "rev")])
            results.append(dict(c, workload=w, step=label,
                                this=verdict.median(samples[(step, "this")]),
                                rev=verdict.median(samples[(step, "rev")])))
    print(f"A/B: this build ({here}{dirty}) against {a.compare} ({sha[:12]}); "
          f"runs={a.runs or 5} scale={a.scale}; medians in seconds; ratio = this / {a.compare}")
    print(f"{'workload':8} {'step':28} {'this s':>8} {'rev s':>8} "
          f"{'ratio [95% interval]':>26}  verdict (this build)")
    for c in results:
        print(f"{c['workload']:8} {c['step']:28} {c['this']:8.3f} {c['rev']:8.3f} "
              f"{verdict.interval_text(c):>26}  {c['verdict']}")
    return results
