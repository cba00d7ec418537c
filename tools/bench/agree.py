#!/usr/bin/python3
"""Do several benchmark runs agree? Prints, side by side, each run's
verdicts (ckpt against each peer) and targets, judged again from the
samples of the OUT.json files bench.py wrote by today's rules
(verdict.py), and whether every run reached the same verdict.

    /usr/bin/python3 tools/bench/agree.py run1.json run2.json run3.json
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402


def main(paths):
    runs = [json.load(open(p)) for p in paths]
    rows = {}  # (workload, what) -> per run: (figure, outcome)
    order = []
    for k, run in enumerate(runs):
        for s in run["summaries"]:
            s["verdicts"] = bench.verdicts_of(s)
        run["targets"] = [t for s in run["summaries"] for t in bench.targets(s)]
        for s in run["summaries"]:
            w = s["workload"]
            for v in s.get("verdicts", []):
                key = (w, f"ckpt {v['step']} vs {v['peer']}")
                figure = f"{v['ratio']:.2f}x [{v['low']:.2f}, {v['high']:.2f}]"
                word = {"faster": "faster", "slower": "SLOWER"}.get(
                    v["verdict"], "tie")
                if key not in rows:
                    order.append(key)
                rows.setdefault(key, [None] * len(runs))[k] = (figure, word)
        for text, figure, outcome in run.get("targets", []):
            w, _, what = text.partition(" ")
            key = (w, what)
            if key not in rows:
                order.append(key)
            word = outcome if outcome in ("met", "missed") else "undecided"
            rows.setdefault(key, [None] * len(runs))[k] = (figure, word)
    width = 30
    print(f"{'':4} {'verdict or target':58} " +
          " ".join(f"{'run ' + str(k + 1):>{width + 10}}" for k in range(len(runs))) +
          "  agree")
    disagree = 0
    for key in order:
        cells = rows[key]
        words = {c[1] for c in cells if c}
        same = len(words) == 1 and all(cells)
        disagree += not same
        shown = " ".join(f"{(c[0] if c else '-'):>{width}} {(c[1] if c else ''):>9}"
                         for c in cells)
        print(f"{key[0]:4} {key[1][:58]:58} {shown}  {'yes' if same else 'NO'}")
    print(f"\n{len(order) - disagree} of {len(order)} agree across {len(runs)} runs")
    return 0 if disagree == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
