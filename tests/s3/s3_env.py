"""An S3 server and a fault-injecting proxy before it, for a command's run.

    .venv/bin/python tests/s3/s3_env.py [--bucket B] -- COMMAND ARGS...

Starts moto's S3 server (the pinned .venv's) on a free port of 127.0.0.1,
creates bucket B (default "ckpt-test"), starts the proxy on another port,
runs COMMAND with these in its environment, then stops both and exits
with COMMAND's status:

    CKPT_TEST_S3_ENDPOINT   http://127.0.0.1:PORT, the server itself
    CKPT_TEST_S3_PROXY      http://127.0.0.1:PORT, the proxy before it
    CKPT_TEST_S3_CONTROL    http://127.0.0.1:PORT, the proxy's control
    CKPT_TEST_S3_BUCKET     B
    AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY: a user allowed all of S3
    AWS_REGION              us-east-1
    CKPT_TEST_S3_ROLE_ARN   a role allowed all of S3, which that user may
                            assume (sts:AssumeRole): temporary credentials
    CKPT_TEST_CREDENTIALS   http://127.0.0.1:PORT, the instance metadata
                            service, a container credentials endpoint and
                            STS's web identity exchange, handing out the
                            role's credentials (credential_sources.py)

The server checks every request's credentials and signature (moto's IAM
checks, on after the setup's requests).

The proxy passes requests through, except those a fault rule matches.
POST CONTROL/faults with a JSON rule adds one:

    {"method": "GET", "path": "arrays.h5", "fault": "bitflip", "times": 2}

(method and path: optional filters, path a substring of the request's
path and query; times: how many matching requests it hits, default 1).
Faults: "500" and "503" (an S3 error answer: InternalError, SlowDown),
"drop" (the connection closed without an answer), "truncate" (half the
answer's body, then the connection closed), "bitflip" (one byte of the
body changed), "stall" (half the body, then 5 s of silence, then
closed); on an answer without a body (a PUT's), "truncate" and "stall"
close the connection without an answer (at once, or after 5 s). GET
CONTROL/faults gives every request seen as [method, path, fault or
null]; DELETE CONTROL/faults clears the rules and that log.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
VENV_BIN = os.path.join(HERE, "..", "..", ".venv", "bin")
try:
    import moto  # noqa: F401
except ImportError:
    # Run by any Python (meson's): go on under the repository's .venv.
    python = os.path.join(VENV_BIN, "python")
    os.execv(python, [python] + sys.argv)

import credential_sources  # noqa: E402  (beside this file)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Faults:
    def __init__(self):
        self.lock = threading.Lock()
        self.rules = []
        self.log = []

    def take(self, method, path):
        with self.lock:
            fault = None
            for rule in self.rules:
                if rule.get("times", 1) <= 0:
                    continue
                if rule.get("method") not in (None, method):
                    continue
                if rule.get("path", "") not in path:
                    continue
                rule["times"] = rule.get("times", 1) - 1
                fault = rule["fault"]
                break
            self.log.append([method, path, fault])
            return fault


def read_exact(sock_file, n):
    data = sock_file.read(n)
    return data if data is not None else b""


def forward(upstream_port, method, path, headers, body, head_only=False):
    """The server's answer: status line, headers (a list), body."""
    with socket.create_connection(("127.0.0.1", upstream_port)) as up:
        lines = f"{method} {path} HTTP/1.1\r\n"
        for name, value in headers:
            if name.lower() not in ("connection", "keep-alive"):
                lines += f"{name}: {value}\r\n"
        lines += "Connection: close\r\n\r\n"
        up.sendall(lines.encode("latin-1") + body)
        f = up.makefile("rb")
        status = f.readline().decode("latin-1").rstrip("\r\n")
        out_headers = []
        length = None
        while True:
            line = f.readline().decode("latin-1").rstrip("\r\n")
            if not line:
                break
            name, _, value = line.partition(":")
            value = value.strip()
            if name.lower() == "content-length":
                length = int(value)
            if name.lower() in ("connection", "transfer-encoding"):
                continue
            out_headers.append((name, value))
        if head_only:
            return status, out_headers, b""
        body = f.read(length) if length is not None else f.read()
        return status, out_headers, body


def make_proxy_handler(faults, upstream_port):
    class Proxy(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def handle_any(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = read_exact(self.rfile, length) if length else b""
            fault = faults.take(self.command, self.path)
            if fault == "drop":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if fault in ("500", "503"):
                code = "SlowDown" if fault == "503" else "InternalError"
                text = (f"<?xml version=\"1.0\"?><Error><Code>{code}</Code>"
                        f"<Message>injected by the test proxy</Message></Error>")
                data = text.encode()
                self.send_response(int(fault))
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            if self.command == "HEAD":
                status, headers, data = forward(upstream_port, self.command,
                                                self.path,
                                                self.headers.items(), body,
                                                head_only=True)
                self.wfile.write((status + "\r\n").encode("latin-1"))
                for name, value in headers:
                    self.send_header(name, value)
                self.end_headers()
                return
            status, headers, data = forward(upstream_port, self.command,
                                            self.path, self.headers.items(),
                                            body)
            if fault in ("truncate", "stall") and not data:
                # An answer without a body (a PUT's): the server did the
                # work, the client hears nothing (after 5 s: a stall).
                if fault == "stall":
                    time.sleep(5)
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self.wfile.write((status + "\r\n").encode("latin-1"))
            for name, value in headers:
                if name.lower() != "content-length":
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            if fault == "bitflip" and data:
                flipped = bytearray(data)
                flipped[len(flipped) // 2] ^= 0x01
                data = bytes(flipped)
            if fault in ("truncate", "stall"):
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                if fault == "stall":
                    time.sleep(5)
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self.wfile.write(data)

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any

    return Proxy


def make_control_handler(faults):
    class Control(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def answer(self, payload):
            data = json.dumps(payload).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            rule = json.loads(self.rfile.read(length) or b"{}")
            with faults.lock:
                faults.rules.append(rule)
            self.answer({"ok": True})

        def do_GET(self):
            with faults.lock:
                self.answer(list(faults.log))

        def do_DELETE(self):
            with faults.lock:
                faults.rules.clear()
                faults.log.clear()
            self.answer({"ok": True})

    return Control


def wait_for(port, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"the S3 server did not listen on port {port}")


# Requests moto serves before it checks credentials and signatures: the
# bucket, the user, its key and its policy, the role and its policy below.
SETUP_ACTIONS = 6
ROLE = credential_sources.ROLE_NAME


def create_bucket_and_user(endpoint, bucket):
    """Creates the bucket, a user allowed all of S3 and to assume the role
    ROLE, and ROLE, allowed all of S3; the user's key pair."""
    import boto3
    setup = dict(endpoint_url=endpoint, region_name="us-east-1",
                 aws_access_key_id="AKIDSETUP", aws_secret_access_key="setup")
    boto3.client("s3", **setup).create_bucket(Bucket=bucket)
    iam = boto3.client("iam", **setup)
    iam.create_user(UserName="ckpt-test")
    key = iam.create_access_key(UserName="ckpt-test")["AccessKey"]
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:*", "sts:AssumeRole"],
         "Resource": "*"}]}
    iam.put_user_policy(UserName="ckpt-test", PolicyName="s3",
                        PolicyDocument=json.dumps(policy))
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "*"},
         "Action": "sts:AssumeRole"}]}
    iam.create_role(RoleName=ROLE, AssumeRolePolicyDocument=json.dumps(trust))
    policy["Statement"][0]["Action"] = "s3:*"
    iam.put_role_policy(RoleName=ROLE, PolicyName="s3",
                        PolicyDocument=json.dumps(policy))
    return key["AccessKeyId"], key["SecretAccessKey"]


def main():
    argv = sys.argv[1:]
    bucket = "ckpt-test"
    if argv[:1] == ["--bucket"]:
        bucket, argv = argv[1], argv[2:]
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        sys.exit(__doc__)
    server_port, proxy_port, control_port = free_port(), free_port(), free_port()
    server = subprocess.Popen(
        [os.path.join(VENV_BIN, "moto_server"), "-H", "127.0.0.1", "-p",
         str(server_port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env=dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT=str(SETUP_ACTIONS)),
        start_new_session=True)
    try:
        wait_for(server_port)
        endpoint = f"http://127.0.0.1:{server_port}"
        access_key, secret_key = create_bucket_and_user(endpoint, bucket)
        role_arn = f"arn:aws:iam::123456789012:role/{ROLE}"
        faults = Faults()
        proxy = ThreadingHTTPServer(("127.0.0.1", proxy_port),
                                    make_proxy_handler(faults, server_port))
        control = ThreadingHTTPServer(("127.0.0.1", control_port),
                                      make_control_handler(faults))
        issuer = credential_sources.Issuer(endpoint, access_key, secret_key,
                                           role_arn)
        sources = ThreadingHTTPServer(("127.0.0.1", 0),
                                      credential_sources.make_handler(issuer))
        for s in (proxy, control, sources):
            s.daemon_threads = True
            threading.Thread(target=s.serve_forever, daemon=True).start()
        env = dict(os.environ)
        env.update({
            "CKPT_TEST_S3_ENDPOINT": endpoint,
            "CKPT_TEST_S3_PROXY": f"http://127.0.0.1:{proxy_port}",
            "CKPT_TEST_S3_CONTROL": f"http://127.0.0.1:{control_port}",
            "CKPT_TEST_S3_BUCKET": bucket,
            "AWS_ACCESS_KEY_ID": access_key,
            "AWS_SECRET_ACCESS_KEY": secret_key,
            "AWS_REGION": "us-east-1",
            "CKPT_TEST_S3_ROLE_ARN": role_arn,
            "CKPT_TEST_CREDENTIALS":
                f"http://127.0.0.1:{sources.server_address[1]}",
        })
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL",
                     "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_STS",
                     "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN",
                     "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                     "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                     "AWS_EC2_METADATA_SERVICE_ENDPOINT"):
            env.pop(name, None)
        child = subprocess.Popen(argv, env=env)

        # Stopped (a timeout's SIGTERM): the command first, then the server.
        def stop(signum, frame):
            child.send_signal(signum)
        signal.signal(signal.SIGTERM, stop)
        try:
            return child.wait()
        except KeyboardInterrupt:
            child.send_signal(signal.SIGINT)
            return child.wait()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


if __name__ == "__main__":
    sys.exit(main())
