"""ckpt-s3's SigV4 signer against botocore's, over a table of requests.

    .venv/bin/python tests/s3/sigv4_check.py BUILD/tests/s3/sigv4_vectors

Each request (methods, encoded paths, queries with odd characters and
empty values, headers with odd spacing and case, session tokens, regions,
bodies) is signed by both; every Authorization header must agree. Prints
one line per case and `N passed, N failed`.
"""
import json
import os
import subprocess
import sys
from urllib.parse import quote

HERE = os.path.dirname(os.path.abspath(__file__))
VENV = os.path.join(HERE, "..", "..", ".venv", "bin", "python")
try:
    import botocore  # noqa: F401
except ImportError:
    # Run by any Python (meson's): go on under the repository's .venv.
    os.execv(VENV, [VENV] + sys.argv)

from unittest import mock  # noqa: E402
import datetime  # noqa: E402
from botocore.auth import S3SigV4Auth  # noqa: E402
from botocore.awsrequest import AWSRequest  # noqa: E402
from botocore.credentials import Credentials  # noqa: E402


def enc(text, safe=""):
    return quote(text, safe="-_.~" + safe)


def cases():
    base = {
        "method": "GET", "host": "127.0.0.1:9000", "path": "/bucket/key",
        "query": [], "headers": [], "body": b"", "access_key": "AKIDEXAMPLE",
        "secret_key": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        "token": "", "region": "us-east-1", "when": "20261207T034500Z",
    }
    table = [
        {},
        {"method": "PUT", "body": b"hello, world\n"},
        {"method": "PUT", "body": bytes(range(256)) * 64,
         "headers": [["Content-Length", "16384"]]},
        {"path": "/bucket/" + enc("dir/a b+c=d&e", "/"),},
        {"path": "/bucket/" + enc("ünïcode/ключ/键", "/")},
        {"path": "/bucket/" + enc("step_10/attempt-00ff/state/arrays.h5", "/")},
        {"path": "/bucket", "query": [["list-type", "2"], ["prefix", "runs/a b/"]]},
        {"path": "/bucket", "query": [["list-type", "2"], ["prefix", ""],
                                      ["continuation-token", "1/2+3=="]]},
        {"method": "POST", "query": [["uploads", ""]]},
        {"method": "PUT", "query": [["partNumber", "7"], ["uploadId", "a~b_c.d-e/f"]],
         "body": b"x" * 1000},
        {"method": "POST", "query": [["uploadId", "VXBsb2FkIElE"]],
         "body": b"<CompleteMultipartUpload></CompleteMultipartUpload>"},
        {"method": "DELETE"},
        {"method": "HEAD"},
        {"method": "PUT", "headers": [["If-None-Match", "*"]], "body": b"{}"},
        {"headers": [["Range", "bytes=0-8388607"]]},
        {"headers": [["X-Amz-Meta-Note", "  two   spaces  inside  "]]},
        {"headers": [["x-amz-meta-a", "1"], ["X-AMZ-META-B", "2"],
                     ["Content-Type", "application/octet-stream"]]},
        {"token": "FQoGZXIvYXdzEJr//////////wEaDOLONGTOKEN+/="},
        {"region": "eu-central-1", "host": "s3.eu-central-1.amazonaws.com"},
        {"region": "ap-southeast-2", "host": "my-bucket.s3.ap-southeast-2.amazonaws.com",
         "path": "/" + enc("a/b", "/")},
        {"host": "localhost", "when": "20240229T235959Z"},
        {"access_key": "K", "secret_key": "s" * 64, "when": "19991231T000000Z"},
    ]
    for override in table:
        case = dict(base)
        case.update(override)
        yield case


def botocore_signature(case):
    query = "&".join(f"{enc(k)}={enc(v)}" for k, v in case["query"])
    url = f"http://{case['host']}{case['path']}" + (f"?{query}" if query else "")
    request = AWSRequest(method=case["method"], url=url, data=case["body"],
                         headers=dict(case["headers"]))
    credentials = Credentials(case["access_key"], case["secret_key"],
                              case["token"] or None)
    when = datetime.datetime.strptime(case["when"], "%Y%m%dT%H%M%SZ")
    with mock.patch("botocore.auth.get_current_datetime", return_value=when):
        S3SigV4Auth(credentials, "s3", case["region"]).add_auth(request)
    return request.headers["Authorization"]


def main():
    table = list(cases())
    cpp_input = [{
        "method": c["method"], "host": c["host"], "path": c["path"],
        "query": c["query"], "headers": c["headers"],
        "body_hex": c["body"].hex(), "access_key": c["access_key"],
        "secret_key": c["secret_key"], "token": c["token"],
        "region": c["region"], "amz_date": c["when"],
    } for c in table]
    out = subprocess.run([sys.argv[1]], input=json.dumps(cpp_input),
                         capture_output=True, text=True, check=True).stdout
    ours = out.splitlines()
    passed = failed = 0
    for i, case in enumerate(table):
        theirs = botocore_signature(case)
        mine = ours[i] if i < len(ours) else "(none)"
        name = f"{case['method']} {case['path'][:40]} q={len(case['query'])} h={len(case['headers'])}"
        if mine == theirs:
            passed += 1
            print(f"ok    {name}")
        else:
            failed += 1
            print(f"FAIL  {name}\n  ckpt:     {mine}\n  botocore: {theirs}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
