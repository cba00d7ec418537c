"""Verdicts that hold on a noisy machine.

A "faster than" verdict between two tools is given only when the difference
holds across rounds and is at least MIN_DIFFERENCE: either every sample of
one is below every sample of the other, or a bootstrap 95% interval of the
ratio of their medians lies wholly beyond 1 +- MIN_DIFFERENCE (with at
least MIN_SAMPLES rounds; with fewer, the interval is the range of every
pair's ratio). Otherwise the verdict is a tie (noise).
Targets ("at least 0.9x the raw limit") use the same interval: met when
all of it is on the right side, missed when all of it is on the wrong
side, undecided otherwise.
Before either, bench.py takes again each sample that is a kernel outlier
(kernel_outlier), for every tool alike.
"""
import random
import statistics

RESAMPLES = 4000
SEED = 20261205
# Fewer samples than this per tool give no bootstrap interval (two or three
# samples have too few distinct resamples to say anything), only the range
# of every pair's ratio.
MIN_SAMPLES = 5


def median(values):
    return statistics.median(values)


def ratio_interval(a, b, resamples=RESAMPLES, seed=SEED):
    """(ratio, low, high): median(a) / median(b) and its bootstrap 95%
    interval, each tool's samples resampled with replacement on its own.
    Deterministic (a fixed seed), so a rerun on the same samples agrees."""
    a, b = list(a), list(b)
    ratio = median(a) / median(b)
    if len(a) < MIN_SAMPLES or len(b) < MIN_SAMPLES:
        # Too few for a bootstrap: the range of every pair's ratio, which
        # holds whatever the rounds' order, and decides only when the
        # rounds of the two tools do not overlap (W2's Orbax rows, 400x).
        return ratio, min(a) / max(b), max(a) / min(b)
    rng = random.Random(seed)
    ratios = sorted(
        median(rng.choices(a, k=len(a))) / median(rng.choices(b, k=len(b)))
        for _ in range(resamples))
    low = ratios[int(0.025 * (resamples - 1))]
    high = ratios[int(0.975 * (resamples - 1))]
    return ratio, low, high


# The smallest difference a verdict claims: one tool is "faster" only when
# it is at least this much faster (the ratio's interval, or with separated
# samples the ratio itself, below 1 / (1 + MIN_DIFFERENCE)), "slower" when
# the ratio is above 1 + MIN_DIFFERENCE. A true ratio near 1 then reads as
# a tie in every run, not as "slower" in one run and a tie in the next (W1
# save against numpy.save: 1.18x [1.00, 1.23], then 0.99x [0.83, 1.19]).
MIN_DIFFERENCE = 0.10


def compare(a, b):
    """How tool A's times `a` compare with tool B's `b`: a dict with
    "ratio" (median a / median b), "low", "high" (its 95% interval),
    "separated" (every sample of one below every sample of the other) and
    "verdict": "faster" (A is), "slower" or "tie (noise)"."""
    ratio, low, high = ratio_interval(a, b)
    separated = max(a) < min(b) or max(b) < min(a)
    faster_than = 1 / (1 + MIN_DIFFERENCE)
    slower_than = 1 + MIN_DIFFERENCE
    if high < faster_than or (separated and max(a) < min(b) and
                              ratio < faster_than):
        verdict = "faster"
    elif low > slower_than or (separated and max(b) < min(a) and
                               ratio > slower_than):
        verdict = "slower"
    else:
        verdict = "tie (noise)"
    return {"ratio": ratio, "low": low, "high": high, "separated": separated,
            "verdict": verdict}


def target(low, high, threshold, at_least):
    """"met", "missed" or "undecided (noise)" for a figure whose interval is
    [low, high] against `threshold` (at least it, or at most it)."""
    if at_least:
        if low >= threshold:
            return "met"
        if high < threshold:
            return "missed"
    else:
        if high <= threshold:
            return "met"
        if low > threshold:
            return "missed"
    return "undecided (noise)"


# A kernel outlier: a sample whose system time is more than KERNEL_FACTOR
# times its row's median and at least KERNEL_EXCESS seconds above it, while
# what the tool itself controls (page faults, bytes read and written) is
# within WORK_TOLERANCE of the row's medians. On the development VM about 1
# step in 25 of any writer (ckpt, the raw write() loop) spends 0.4 s more
# in the kernel this way, with no reclaim or compaction in /proc/vmstat;
# a bootstrap of 5 rounds cannot tell one such sample from a slower tool.
KERNEL_FACTOR = 3.0
KERNEL_EXCESS = 0.1
WORK_TOLERANCE = 0.1
WORK_KEYS = ("minor_faults", "major_faults", "read_bytes", "write_bytes")


def kernel_outlier(sample, row):
    """Whether `sample` is a kernel outlier among the samples `row` of its
    step (at least 3, with the costs measured)."""
    key = "cpu_system_seconds"
    if len(row) < 3 or any(key not in s for s in row):
        return False
    typical = median(s[key] for s in row)
    if sample[key] <= KERNEL_FACTOR * typical or sample[key] - typical < KERNEL_EXCESS:
        return False
    for work in WORK_KEYS:
        if any(work not in s for s in row):
            continue
        usual = median(s[work] for s in row)
        if abs(sample[work] - usual) > WORK_TOLERANCE * usual + 64:
            return False
    return True


def interval_text(c):
    return f"{c['ratio']:.2f}x [{c['low']:.2f}, {c['high']:.2f}]"
