"""Real registries for tests: Debian's docker-registry on loopback, optionally
behind htpasswd (basic) or token auth, and skopeo as the independent client."""

import base64
import datetime
import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import bcrypt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

USER, PASSWORD = "berth", "s3cret-pass"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Registry:
    def __init__(self, root: Path, auth: str | None = None):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.auth = auth
        self.token_server = None
        self.process = None

    def start(self) -> "Registry":
        config = {"version": 0.1, "log": {"level": "warn"},
                  "storage": {"filesystem": {"rootdirectory": str(self.root / "data")},
                              "delete": {"enabled": True}},
                  "http": {"addr": self.address}}
        if self.auth == "basic":
            htpasswd = self.root / "htpasswd"
            hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
            htpasswd.write_text(f"{USER}:{hashed}\n")
            config["auth"] = {"htpasswd": {"realm": "berth-test", "path": str(htpasswd)}}
        elif self.auth == "token":
            self.token_server = TokenServer(self.root).start()
            config["auth"] = {"token": {"realm": self.token_server.url, "service": "berth-test",
                                        "issuer": "berth-test-issuer",
                                        "rootcertbundle": str(self.token_server.cert_path)}}
        path = self.root / "config.json"  # YAML is a superset of JSON
        path.write_text(json.dumps(config))
        log = open(self.root / "registry.log", "wb")  # noqa: SIM115 - child's stdout
        self.process = subprocess.Popen(["docker-registry", "serve", str(path)], stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://{self.address}/v2/", timeout=1)
                return self
            except urllib.error.HTTPError:
                return self  # 401 still means it is up
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"registry did not start: {(self.root / 'registry.log').read_text()}")

    def stop(self) -> None:
        if self.process:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        if self.token_server:
            self.token_server.stop()

    def skopeo_creds(self) -> list[str]:
        return [f"--dest-creds={USER}:{PASSWORD}"] if self.auth else []

    def settings(self) -> dict:
        creds = {"username": USER, "password": PASSWORD} if self.auth else {}
        return {self.address: creds}


def skopeo(*args: str, timeout: float = 120) -> str:
    result = subprocess.run(["skopeo", "--insecure-policy", *args], capture_output=True,
                            text=True, timeout=timeout)
    if result.returncode != 0:
        raise AssertionError(f"skopeo {' '.join(args)} failed: {result.stderr}")
    return result.stdout


def skopeo_push(source: str, registry: Registry, name: str) -> None:
    skopeo("copy", "--dest-tls-verify=false", *registry.skopeo_creds(), source,
           f"docker://{registry.address}/{name}")


def skopeo_inspect(registry: Registry, name: str, raw: bool = False) -> dict:
    creds = [f"--creds={USER}:{PASSWORD}"] if registry.auth else []
    args = ["inspect", "--tls-verify=false", *creds]
    if raw:
        args.append("--raw")
    return json.loads(skopeo(*args, f"docker://{registry.address}/{name}"))


class TokenServer:
    """A Docker token server: checks basic credentials, signs ES256 JWTs with a
    self-signed certificate the registry trusts (its `rootcertbundle`)."""

    def __init__(self, root: Path):
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "berth-test-token")])
        now = datetime.datetime.now(datetime.UTC)
        self.cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(days=1))
                     .not_valid_after(now + datetime.timedelta(days=1))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
                     .sign(self.key, hashes.SHA256()))
        self.cert_path = root / "token.pem"
        self.cert_path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/token"
        self.requests: list[str] = []
        self.server = None

    def start(self) -> "TokenServer":
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the stdlib's name
                issuer.requests.append(self.path)
                if self.headers.get("Authorization") != "Basic " + base64.b64encode(
                        f"{USER}:{PASSWORD}".encode()).decode():
                    self.send_response(401)
                    self.end_headers()
                    return
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                token = issuer.token(query.get("scope", [""])[0], query["service"][0])
                body = json.dumps({"token": token}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def token(self, scope: str, service: str) -> str:
        access = []
        if scope:
            kind, name, actions = scope.split(":")
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        cert_der = self.cert.public_bytes(serialization.Encoding.DER)
        header = {"alg": "ES256", "typ": "JWT", "x5c": [base64.b64encode(cert_der).decode()]}
        claims = {"iss": "berth-test-issuer", "sub": USER, "aud": service, "exp": now + 300,
                  "nbf": now - 10, "iat": now, "jti": os.urandom(8).hex(), "access": access}
        signing_input = f"{_b64(json.dumps(header))}.{_b64(json.dumps(claims))}"
        der = self.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return f"{signing_input}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def _b64(data) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
