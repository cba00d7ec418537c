"""Checkpoints to and from S3: ckpt against boto3, on a local S3 server.

    .venv/bin/python tools/bench/s3_bench.py [--runs 5] [--scale 1] \
        [--workloads W1,W3] [--build build] [--dir /tmp/ckpt-s3-bench] \
        [--out tools/bench/runs/s3]

Starts moto's S3 server (the pinned .venv's, checking signatures) on
127.0.0.1, writes a checkpoint of each workload (bench.py's trees, saved
by ckpt's Python package in BUILD/python), then per round, in a fresh
process each and in alternating order:

  - ckpt upload:    `ckpt cp CHECKPOINT s3://...` (timed around the
                    process: startup, hashing, upload, commit record);
  - boto3 upload:   upload_file of every file of the same folder, default
                    TransferConfig (timed inside the process, after
                    importing boto3 and making its client);
  - ckpt download:  `ckpt cp s3://... DEST` (checks every byte);
  - boto3 download: download_file of every object boto3 uploaded.

Then the blocking time of a training step while uploads run: the example
training loop (BUILD/examples/training_loop, 100 steps of 20 ms, an async
save every 10) without and with CKPT_REMOTE_ROOT, from its "training
resumed after X ms" lines. Prints medians and ratios with bench.py's verdict
rules; writes OUT.json with every sample.
"""
import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "s3"))
import verdict  # noqa: E402
from s3_env import create_bucket_and_user, free_port, wait_for  # noqa: E402

BUCKET = "ckpt-bench"
# The example loop's stand-in for a training step's work: a save every
# 10 steps, so every 200 ms.
STEP_MS = 20

BOTO3_UPLOAD = r"""
import os, sys, time, boto3
local, prefix = sys.argv[1], sys.argv[2]
s3 = boto3.client("s3")
files = [os.path.join(d, f) for d, _, fs in os.walk(local) for f in fs]
start = time.perf_counter()
for path in files:
    s3.upload_file(path, "%s", prefix + "/" + os.path.relpath(path, local))
print(time.perf_counter() - start)
""" % BUCKET

BOTO3_DOWNLOAD = r"""
import os, sys, time, boto3
prefix, dest = sys.argv[1], sys.argv[2]
s3 = boto3.client("s3")
start = time.perf_counter()
keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(
    Bucket="%s", Prefix=prefix + "/") for o in page.get("Contents", [])]
for key in keys:
    path = os.path.join(dest, os.path.relpath(key, prefix))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    s3.download_file("%s", key, path)
print(time.perf_counter() - start)
""" % (BUCKET, BUCKET)


def folder_bytes(path):
    return sum(os.path.getsize(os.path.join(d, f))
               for d, _, fs in os.walk(path) for f in fs)


def write_checkpoints(a, scratch):
    """One checkpoint per workload, by ckpt's Python package."""
    sys.path.insert(0, os.path.join(a.build, "python"))
    import ckpt
    from bench import make_workload
    out = {}
    for w in a.workloads:
        path = os.path.join(scratch, w)
        shutil.rmtree(path, ignore_errors=True)
        ckpt.save_pytree(path, make_workload(w, a.scale))
        out[w] = path
    return out


def empty_bucket(env):
    import boto3
    s3 = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"],
                      aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                      aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
                      region_name="us-east-1")
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for o in page.get("Contents", []):
            s3.delete_object(Bucket=BUCKET, Key=o["Key"])


def timed(argv, env):
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{argv[:3]} failed: {done.stderr or done.stdout}")
    return elapsed, done.stdout


def one_round(a, env, checkpoints, scratch, r, samples):
    python = sys.executable
    tool = os.path.join(a.build, "tools", "ckpt")
    for w, local in checkpoints.items():
        tag = f"{w}-r{r}"
        order = ["ckpt", "boto3"] if r % 2 == 0 else ["boto3", "ckpt"]
        for peer in order:
            dest = os.path.join(scratch, f"down-{peer}-{tag}")
            shutil.rmtree(dest, ignore_errors=True)
            if peer == "ckpt":
                url = f"s3://{BUCKET}/ckpt/{tag}"
                up, _ = timed([tool, "cp", local, url], env)
                down, _ = timed([tool, "cp", url, dest], env)
            else:
                up_process, out = timed([python, "-c", BOTO3_UPLOAD, local,
                                         f"boto3/{tag}"], env)
                up = float(out.split()[-1])
                down_process, out = timed([python, "-c", BOTO3_DOWNLOAD,
                                           f"boto3/{tag}", dest], env)
                down = float(out.split()[-1])
                samples.append({"workload": w, "peer": "boto3 process",
                                "step": "upload", "seconds": up_process})
                samples.append({"workload": w, "peer": "boto3 process",
                                "step": "download", "seconds": down_process})
            if folder_bytes(dest) != folder_bytes(local):
                raise RuntimeError(f"{peer} downloaded {dest} incomplete")
            shutil.rmtree(dest)
            # The server keeps objects in memory: each round starts empty.
            empty_bucket(env)
            samples.append({"workload": w, "peer": peer, "step": "upload",
                            "seconds": up})
            samples.append({"workload": w, "peer": peer, "step": "download",
                            "seconds": down})
            print(f"  {w} round {r + 1}: {peer} up {up:.3f} s, "
                  f"down {down:.3f} s", flush=True)


def blocking_times(a, env, scratch, remote):
    """Median blocking time (ms) of the example loop's async saves."""
    root = os.path.join(scratch, "loop-remote" if remote else "loop-local")
    shutil.rmtree(root, ignore_errors=True)
    run_env = dict(env, CKPT_EXAMPLE_STEP_MS=str(STEP_MS))
    if remote:
        run_env["CKPT_REMOTE_ROOT"] = f"s3://{BUCKET}/loop-{time.time_ns()}"
    else:
        run_env.pop("CKPT_REMOTE_ROOT", None)
    _, out = timed([os.path.join(a.build, "examples", "training_loop"), root,
                    "100"], run_env)
    shutil.rmtree(root, ignore_errors=True)
    return [float(m) for m in re.findall(r"resumed after ([0-9.]+) ms", out)]


def report(samples, a):
    print(f"\nS3 benchmark (runs={a.runs} scale={a.scale}, moto's server on "
          "127.0.0.1); medians in seconds. ckpt: its whole process; boto3: "
          "the transfer alone, and its whole process (import, client); "
          "ratio = ckpt / boto3's whole process")
    lines = []
    for w in a.workloads:
        for step in ("upload", "download"):
            got = {p: [s["seconds"] for s in samples if s["workload"] == w
                       and s["step"] == step and s["peer"] == p]
                   for p in ("ckpt", "boto3", "boto3 process")}
            c = verdict.compare(got["ckpt"], got["boto3 process"])
            goal = verdict.target(c["low"], c["high"], 1.0, at_least=False)
            t = verdict.compare(got["ckpt"], got["boto3"])
            lines.append(
                f"{w}  {step:9s} ckpt {statistics.median(got['ckpt']):7.3f}  "
                f"boto3 {statistics.median(got['boto3']):7.3f} transfer, "
                f"{statistics.median(got['boto3 process']):7.3f} process  "
                f"{verdict.interval_text(c)}  {c['verdict']:12s} "
                f"(ckpt at least as fast: {goal}; against the transfer "
                f"alone {verdict.interval_text(t)})")
    for line in lines:
        print(line)
    return lines


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--scale", type=int, default=1)
    p.add_argument("--workloads", default="W1,W3")
    p.add_argument("--build", default=os.path.join(ROOT, "build"))
    p.add_argument("--dir", default="/tmp/ckpt-s3-bench")
    p.add_argument("--out", default=None)
    a = p.parse_args()
    a.workloads = a.workloads.split(",")
    os.makedirs(a.dir, exist_ok=True)
    port = free_port()
    server = subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), "moto_server"), "-H",
         "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env=dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT="4"),
        start_new_session=True)
    try:
        wait_for(port)
        endpoint = f"http://127.0.0.1:{port}"
        key, secret = create_bucket_and_user(endpoint, BUCKET)
        env = dict(os.environ, AWS_ENDPOINT_URL=endpoint,
                   AWS_ACCESS_KEY_ID=key, AWS_SECRET_ACCESS_KEY=secret,
                   AWS_REGION="us-east-1", CKPT_LOG_LEVEL="error")
        checkpoints = write_checkpoints(a, a.dir)
        for w, path in checkpoints.items():
            print(f"{w}: {folder_bytes(path) / 2**20:.1f} MiB in "
                  f"{sum(len(f) for _, _, f in os.walk(path))} files")
        samples = []
        for r in range(a.runs):
            one_round(a, env, checkpoints, a.dir, r, samples)
        lines = report(samples, a)
        local = blocking_times(a, env, a.dir, remote=False)
        remote = blocking_times(a, env, a.dir, remote=True)
        line = (f"training step blocking on an async save: local only "
                f"{statistics.median(local):.2f} ms, with S3 uploads "
                f"{statistics.median(remote):.2f} ms (medians of "
                f"{len(local)} and {len(remote)} saves)")
        print(line)
        if a.out:
            with open(a.out + ".json", "w") as f:
                json.dump({"samples": samples, "blocking_ms": {
                    "local": local, "remote": remote},
                    "lines": lines + [line]}, f, indent=1)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait()


if __name__ == "__main__":
    main()
