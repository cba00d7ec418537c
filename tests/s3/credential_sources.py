"""Where machines in AWS get their credentials, for the tests: one HTTP
server playing the instance metadata service (IMDSv2), a container
credentials endpoint and STS's AssumeRoleWithWebIdentity. What each hands
out is real: temporary credentials of the test role, from moto's STS
(sts:AssumeRole as the test user), which moto's S3 then checks, session
token included.

    IMDS       BASE                      (AWS_EC2_METADATA_SERVICE_ENDPOINT)
    container  BASE/container/credentials, Authorization: CONTAINER_TOKEN
    STS        BASE/sts                  (AWS_ENDPOINT_URL_STS), RoleArn the
               test role's, WebIdentityToken WEB_IDENTITY_TOKEN

GET BASE/control gives how many credentials each source handed out;
POST BASE/control {"lifetime": SECONDS} sets the Expiration the next
ones report (default 900 s, what moto grants), {"corrupt": true} puts a
line break into the key id the next ones carry; DELETE resets them.
"""
import datetime
import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler

CONTAINER_TOKEN = "test-container-token"
WEB_IDENTITY_TOKEN = "test-web-identity-token"
IMDS_TOKEN = "test-imds-session"
ROLE_NAME = "ckpt-test-role"


class Issuer:
    """Temporary credentials of the role, from moto's STS."""

    def __init__(self, endpoint, access_key, secret_key, role_arn):
        import boto3
        self.sts = boto3.client("sts", endpoint_url=endpoint,
                                region_name="us-east-1",
                                aws_access_key_id=access_key,
                                aws_secret_access_key=secret_key)
        self.role_arn = role_arn
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        with self.lock:
            self.lifetime = 900
            self.corrupt = False
            self.counts = {"imds": 0, "container": 0, "sts": 0}

    def issue(self, source):
        with self.lock:
            self.counts[source] += 1
            n = sum(self.counts.values())
            lifetime = self.lifetime
            corrupt = self.corrupt
        c = self.sts.assume_role(RoleArn=self.role_arn,
                                 RoleSessionName=f"ckpt-test-{n}",
                                 DurationSeconds=900)["Credentials"]
        expires = datetime.datetime.now(datetime.timezone.utc) + \
            datetime.timedelta(seconds=lifetime)
        return {"AccessKeyId": c["AccessKeyId"] +
                ("\r\nX-Injected: 1" if corrupt else ""),
                "SecretAccessKey": c["SecretAccessKey"],
                "Token": c["SessionToken"],
                "Expiration": expires.strftime("%Y-%m-%dT%H:%M:%SZ")}


def sts_answer(c):
    return (
        "<AssumeRoleWithWebIdentityResponse xmlns="
        "\"https://sts.amazonaws.com/doc/2011-06-15/\">"
        "<AssumeRoleWithWebIdentityResult><Credentials>"
        f"<AccessKeyId>{c['AccessKeyId']}</AccessKeyId>"
        f"<SecretAccessKey>{c['SecretAccessKey']}</SecretAccessKey>"
        f"<SessionToken>{c['Token']}</SessionToken>"
        f"<Expiration>{c['Expiration']}</Expiration>"
        "</Credentials></AssumeRoleWithWebIdentityResult>"
        "</AssumeRoleWithWebIdentityResponse>")


def sts_error(code, message):
    return ("<ErrorResponse><Error><Type>Sender</Type>"
            f"<Code>{code}</Code><Message>{message}</Message>"
            "</Error></ErrorResponse>")


def make_handler(issuer):
    class Sources(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def reply(self, status, body, kind="application/json"):
            data = body.encode() if isinstance(body, str) else body
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_PUT(self):
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            if self.path != "/latest/api/token":
                return self.reply(404, "")
            if not self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
                return self.reply(400, "")
            self.reply(200, IMDS_TOKEN, "text/plain")

        def do_GET(self):
            url = urllib.parse.urlsplit(self.path)
            prefix = "/latest/meta-data/iam/security-credentials/"
            if url.path == "/control":
                with issuer.lock:
                    return self.reply(200, json.dumps(issuer.counts))
            if url.path.startswith(prefix):
                if self.headers.get("X-aws-ec2-metadata-token") != IMDS_TOKEN:
                    return self.reply(401, "")
                role = url.path[len(prefix):]
                if not role:
                    return self.reply(200, ROLE_NAME + "\n", "text/plain")
                if role != ROLE_NAME:
                    return self.reply(404, "")
                return self.reply(200, json.dumps(
                    dict(issuer.issue("imds"), Code="Success")))
            if url.path == "/container/credentials":
                if self.headers.get("Authorization") != CONTAINER_TOKEN:
                    return self.reply(401, json.dumps(
                        {"message": "wrong authorization token"}))
                return self.reply(200, json.dumps(issuer.issue("container")))
            if url.path in ("/sts", "/sts/"):
                q = dict(urllib.parse.parse_qsl(url.query))
                if q.get("Action") != "AssumeRoleWithWebIdentity" or \
                        q.get("RoleArn") != issuer.role_arn:
                    return self.reply(400, sts_error(
                        "InvalidParameterValue", "not the test role"),
                        "text/xml")
                if q.get("WebIdentityToken") != WEB_IDENTITY_TOKEN:
                    return self.reply(400, sts_error(
                        "InvalidIdentityToken", "the token is not valid"),
                        "text/xml")
                return self.reply(200, sts_answer(issuer.issue("sts")),
                                  "text/xml")
            self.reply(404, "")

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            with issuer.lock:
                issuer.lifetime = int(body.get("lifetime", issuer.lifetime))
                issuer.corrupt = bool(body.get("corrupt", issuer.corrupt))
            self.reply(200, "{}")

        def do_DELETE(self):
            issuer.reset()
            self.reply(200, "{}")

    return Sources
