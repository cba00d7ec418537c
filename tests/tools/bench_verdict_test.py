#!/usr/bin/python3
"""The benchmark's verdict rules (tools/bench/verdict.py): which samples are
kernel outliers to take again, and when a ratio is a verdict. Prints one
line per case, "bench verdict NAME: ok" or "... FAILED"; exits 1 on a
failure."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "tools", "bench"))
import verdict  # noqa: E402


def step(seconds, system, faults=2898, written=277_962_752):
    return {"seconds": seconds, "cpu_system_seconds": system,
            "cpu_user_seconds": 0.03, "minor_faults": faults,
            "major_faults": 0, "read_bytes": 0, "write_bytes": written}


def row_with(outlier):
    return [step(0.09, 0.07), step(0.10, 0.08), outlier, step(0.08, 0.07),
            step(0.11, 0.08)]


def case_kernel_outlier_is_taken_again():
    bad = step(0.55, 0.52)
    assert verdict.kernel_outlier(bad, row_with(bad))
    assert not any(verdict.kernel_outlier(s, row_with(bad))
                   for s in row_with(bad) if s is not bad)


def case_more_work_is_not_an_outlier():
    # Twice the bytes written or many more faults: the tool did more, and
    # that is what the benchmark measures.
    more_bytes = step(0.55, 0.52, written=2 * 277_962_752)
    assert not verdict.kernel_outlier(more_bytes, row_with(more_bytes))
    more_faults = step(0.55, 0.52, faults=60_000)
    assert not verdict.kernel_outlier(more_faults, row_with(more_faults))


def case_small_or_user_time_excess_is_not_an_outlier():
    small = step(0.12, 0.15)  # 2x the median, under 0.1 s above it
    assert not verdict.kernel_outlier(small, row_with(small))
    user = dict(step(0.55, 0.08), cpu_user_seconds=0.5)
    assert not verdict.kernel_outlier(user, row_with(user))


def case_too_few_samples_or_costs_decide_nothing():
    bad = step(0.55, 0.52)
    assert not verdict.kernel_outlier(bad, [step(0.09, 0.07), bad])
    bare = [{"seconds": x} for x in (0.09, 0.55, 0.1)]
    assert not verdict.kernel_outlier(bare[1], bare)


def case_separated_samples_are_a_verdict():
    c = verdict.compare([0.1, 0.11, 0.12], [0.3, 0.31, 0.32])
    assert c["verdict"] == "faster" and c["separated"], c
    c = verdict.compare([0.3, 0.31, 0.32], [0.1, 0.11, 0.12])
    assert c["verdict"] == "slower", c


def case_three_rounds_decide_only_when_they_do_not_overlap():
    # W2 against Orbax, three rounds each: every pair at least 300x apart.
    ratio, low, high = verdict.ratio_interval([0.07, 0.08, 0.076],
                                              [31.0, 32.5, 34.0])
    assert high < 1 / 300 and verdict.target(1 / high, 1 / low, 3, True) == "met"
    ratio, low, high = verdict.ratio_interval([0.1, 0.3, 0.2], [0.25, 0.4, 0.35])
    assert low < 1 < high, (low, high)
    assert verdict.compare([0.1, 0.3, 0.2], [0.25, 0.4, 0.35])["verdict"] == \
        "tie (noise)"


def case_one_outlier_among_five_makes_a_tie():
    # Why outliers are taken again: one 0.5 s sample among five against a
    # peer's 0.36 s puts the interval's upper end above 1.
    ckpt = [0.09, 0.10, 0.08, 0.11, 0.50]
    peer = [0.35, 0.36, 0.37, 0.36, 0.38]
    assert verdict.compare(ckpt, peer)["verdict"] == "tie (noise)"
    assert verdict.compare(ckpt[:4] + [0.09], peer)["verdict"] == "faster"


def case_a_difference_under_ten_percent_is_a_tie():
    # Separated samples 5% apart, and a tight interval around 1.05: a tie,
    # so that a true ratio near 1 reads alike in every run.
    c = verdict.compare([1.05, 1.051, 1.052, 1.053, 1.054],
                        [1.0, 1.001, 1.002, 1.003, 1.004])
    assert c["separated"] and c["verdict"] == "tie (noise)", c
    c = verdict.compare([1.2, 1.21, 1.22, 1.23, 1.24],
                        [1.0, 1.001, 1.002, 1.003, 1.004])
    assert c["verdict"] == "slower", c
    c = verdict.compare([0.8, 0.81, 0.82, 0.83, 0.84],
                        [1.0, 1.001, 1.002, 1.003, 1.004])
    assert c["verdict"] == "faster", c


def case_overlapping_samples_are_a_tie():
    c = verdict.compare([0.1, 0.2, 0.3, 0.4, 0.5], [0.15, 0.25, 0.35, 0.45, 0.2])
    assert c["verdict"] == "tie (noise)", c


def main():
    failed = 0
    for name, fn in sorted(globals().items()):
        if not name.startswith("case_"):
            continue
        try:
            fn()
            print(f"bench verdict {name[5:]}: ok")
        except AssertionError as e:
            failed += 1
            print(f"bench verdict {name[5:]}: FAILED {e}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
