"""Verdicts that hold on a noisy machine.

A "faster than" verdict between two tools is given only when the difference
holds across rounds: either every sample of one is below every sample of
the other, or a bootstrap 95% interval of the ratio of their medians
excludes 1 (with at least MIN_SAMPLES rounds). Otherwise the verdict is a
tie (noise). Targets ("at least 0.9x
the raw limit") use the same interval: met when all of it is on the right
side, missed when all of it is on the wrong side, undecided otherwise.
"""
import random
import statistics

RESAMPLES = 4000
SEED = 20261205
# Fewer samples than this per tool give no interval: a bootstrap of two or
# three samples has too few distinct resamples to say anything.
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
        return ratio, 0.0, float("inf")
    rng = random.Random(seed)
    ratios = sorted(
        median(rng.choices(a, k=len(a))) / median(rng.choices(b, k=len(b)))
        for _ in range(resamples))
    low = ratios[int(0.025 * (resamples - 1))]
    high = ratios[int(0.975 * (resamples - 1))]
    return ratio, low, high


def compare(a, b):
    """How tool A's times `a` compare with tool B's `b`: a dict with
    "ratio" (median a / median b), "low", "high" (its 95% interval),
    "separated" (every sample of one below every sample of the other) and
    "verdict": "faster" (A is), "slower" or "tie (noise)"."""
    ratio, low, high = ratio_interval(a, b)
    separated = max(a) < min(b) or max(b) < min(a)
    if (separated and max(a) < min(b)) or high < 1:
        verdict = "faster"
    elif (separated and max(b) < min(a)) or low > 1:
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


def interval_text(c):
    return f"{c['ratio']:.2f}x [{c['low']:.2f}, {c['high']:.2f}]"
