"""A client for OCI Distribution registries: auth, manifests, blobs, uploads.

Auth follows the Docker token flow: a request answered 401 names a scheme in
`WWW-Authenticate`; Basic gets the configured credentials, Bearer gets a token
from the named realm (with credentials when configured) for the scope asked.
Plain HTTP is used only for registries marked insecure; loopback registries
count as insecure unless configured otherwise, as in Docker.
"""

import base64
import ipaddress
import json
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

from . import oci

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
MANIFEST_ACCEPT = ", ".join((oci.MEDIA_INDEX, oci.MEDIA_MANIFEST, oci.DOCKER_MANIFEST_LIST,
                             oci.DOCKER_MANIFEST))
TIMEOUT = 60
MAX_MANIFEST = 4 << 20
MAX_TAGS = 1000  # tags one `pull -a` takes
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


class RegistryError(Exception):
    """A registry refused or failed; the message names the registry and the reason."""


class NotFound(RegistryError):
    pass


@dataclass(frozen=True)
class RegistrySettings:
    username: str = ""
    password: str = ""
    insecure: bool | None = None  # None: decide by address (loopback is insecure)
    mirrors: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, data: dict | None) -> "RegistrySettings":
        data = data or {}
        return cls(username=data.get("username") or "", password=data.get("password") or "",
                   insecure=data.get("insecure"), mirrors=tuple(data.get("mirrors") or ()))


def is_loopback(domain: str) -> bool:
    host = urllib.parse.urlsplit(f"//{domain}").hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def endpoint_for(domain: str, settings: RegistrySettings) -> str:
    insecure = settings.insecure if settings.insecure is not None else is_loopback(domain)
    host = DOCKER_HUB_API if domain == DOCKER_HUB else domain
    return f"{'http' if insecure else 'https'}://{host}"


@dataclass
class Endpoint:
    """One base URL (the registry itself or a mirror) with its cached auth."""

    base: str
    settings: RegistrySettings
    _tokens: dict = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def request(self, method: str, path: str, scope: str, headers: dict | None = None,
                data=None, expect=(200,)):
        url = path if path.startswith("http") else self.base + path
        for attempt in range(2):
            request = urllib.request.Request(url, data=data, method=method,
                                             headers=dict(headers or {}))
            auth = self._tokens.get(scope)
            if auth:
                # Unredirected: a blob redirect to storage must not carry our credentials.
                request.add_unredirected_header("Authorization", auth)
            try:
                response = urllib.request.urlopen(request, timeout=TIMEOUT)  # noqa: S310
            except urllib.error.HTTPError as error:
                if error.code == 401 and attempt == 0:
                    self._authenticate(error.headers.get("WWW-Authenticate", ""), scope)
                    continue
                raise _error(error, url) from None
            except (urllib.error.URLError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                raise RegistryError(f"{self.base}: {reason}") from None
            if response.status not in expect:
                response.close()
                raise RegistryError(f"{method} {url}: unexpected HTTP {response.status}")
            return response
        raise RegistryError(f"{self.base}: authentication failed for {scope}")

    def _authenticate(self, challenge: str, scope: str) -> None:
        scheme, _, params_text = challenge.partition(" ")
        params = dict(_CHALLENGE_PARAM.findall(params_text))
        with self._lock:
            if scheme.lower() == "basic":
                if not self.settings.username:
                    raise RegistryError(f"{self.base}: credentials required")
                self._tokens[scope] = "Basic " + self._basic()
            elif scheme.lower() == "bearer":
                self._tokens[scope] = "Bearer " + self._fetch_token(params, scope)
            else:
                raise RegistryError(f"{self.base}: unsupported auth challenge {challenge!r}")

    def _basic(self) -> str:
        pair = f"{self.settings.username}:{self.settings.password}".encode()
        return base64.b64encode(pair).decode()

    def _fetch_token(self, params: dict, scope: str) -> str:
        realm = params.get("realm")
        if not realm:
            raise RegistryError(f"{self.base}: Bearer challenge without a realm")
        query = {"service": params.get("service", "")}
        if scope:
            query["scope"] = scope
        request = urllib.request.Request(f"{realm}?{urllib.parse.urlencode(query)}")
        if self.settings.username:
            request.add_header("Authorization", "Basic " + self._basic())
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310
                body = json.loads(response.read(MAX_MANIFEST))
        except urllib.error.HTTPError as error:
            raise RegistryError(f"token request to {realm} refused: HTTP {error.code}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise RegistryError(f"token request to {realm} failed: {exc}") from None
        token = body.get("token") or body.get("access_token")
        if not token:
            raise RegistryError(f"token server {realm} sent no token")
        return token


def _error(error: urllib.error.HTTPError, url: str) -> RegistryError:
    detail = ""
    try:
        errors = json.loads(error.read(65536) or b"{}").get("errors") or []
        detail = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors)
    except (ValueError, AttributeError):
        pass
    kind = NotFound if error.code == 404 else RegistryError
    if error.code in (401, 403):
        detail = detail or "access denied (check the registry's credentials)"
    return kind(f"{url}: HTTP {error.code}{' — ' + detail if detail else ''}")


class Repository:
    """One repository on one registry, reached through its mirrors first when pulling."""

    def __init__(self, domain: str, path: str, settings: RegistrySettings | None = None):
        self.domain = domain
        self.path = path
        self.settings = settings or RegistrySettings()
        self.upstream = Endpoint(endpoint_for(domain, self.settings), self.settings)
        self.mirrors = [Endpoint(url.rstrip("/"), RegistrySettings(insecure=None))
                        for url in self.settings.mirrors]

    def scope(self, actions: str = "pull") -> str:
        return f"repository:{self.path}:{actions}"

    def _pull_endpoints(self) -> list[Endpoint]:
        return [*self.mirrors, self.upstream]

    def _first(self, call):
        """Try each mirror, then the upstream; the upstream's error is the one reported."""
        last_error = None
        for endpoint in self._pull_endpoints():
            try:
                return call(endpoint)
            except RegistryError as exc:
                last_error = exc
        raise last_error

    # pull side
    def get_manifest(self, reference: str) -> tuple[bytes, str]:
        """The manifest's bytes (digest-verified when asked by digest) and its media type."""
        def fetch(endpoint: Endpoint):
            response = endpoint.request("GET", f"/v2/{self.path}/manifests/{reference}",
                                        self.scope(), {"Accept": MANIFEST_ACCEPT})
            with response:
                body = response.read(MAX_MANIFEST + 1)
                media_type = response.headers.get("Content-Type", "").split(";")[0]
            if len(body) > MAX_MANIFEST:
                raise RegistryError(f"manifest {reference} is larger than {MAX_MANIFEST} bytes")
            if reference.startswith("sha256:") and oci.sha256_digest(body) != reference:
                raise RegistryError(f"manifest {reference} does not match its digest")
            return body, json.loads(body).get("mediaType") or media_type
        return self._first(fetch)

    def tags(self) -> list[str]:
        """The repository's tags, sorted (``docker pull -a``); at most MAX_TAGS."""
        def fetch(endpoint: Endpoint):
            response = endpoint.request("GET", f"/v2/{self.path}/tags/list?n={MAX_TAGS}",
                                        self.scope())
            with response:
                body = response.read(MAX_MANIFEST + 1)
            try:
                tags = json.loads(body).get("tags") or []
            except (ValueError, AttributeError):
                raise RegistryError(f"{self.path}: the tag list is not JSON") from None
            if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
                raise RegistryError(f"{self.path}: the tag list is malformed")
            return sorted(tags)[:MAX_TAGS]
        return self._first(fetch)

    def open_blob(self, digest: str):
        return self._first(lambda endpoint: endpoint.request(
            "GET", f"/v2/{self.path}/blobs/{digest}", self.scope()))

    # push side
    def has_blob(self, digest: str) -> bool:
        try:
            self.upstream.request("HEAD", f"/v2/{self.path}/blobs/{digest}",
                                  self.scope("pull,push")).close()
        except NotFound:
            return False
        return True

    def upload_blob(self, digest: str, open_reader, size: int,
                    mount_from: str | None = None) -> str:
        """Mount the blob from `mount_from` when the registry can, else upload it.

        Returns "mounted" or "uploaded". `open_reader()` is called only when
        the bytes are needed.
        """
        path = f"/v2/{self.path}/blobs/uploads/"
        if mount_from:
            path += "?" + urllib.parse.urlencode({"mount": digest, "from": mount_from})
        response = self.upstream.request("POST", path, self.scope("pull,push"),
                                         {"Content-Length": "0"}, b"", expect=(201, 202))
        with response:
            status, location = response.status, response.headers.get("Location", "")
        if status == 201:
            return "mounted"
        url = urllib.parse.urljoin(self.upstream.base + "/", location)
        url += ("&" if "?" in url else "?") + urllib.parse.urlencode({"digest": digest})
        with open_reader() as reader:
            self.upstream.request("PUT", url, self.scope("pull,push"),
                                  {"Content-Type": "application/octet-stream",
                                   "Content-Length": str(size)}, reader,
                                  expect=(201,)).close()
        return "uploaded"

    def put_manifest(self, tag: str, body: bytes, media_type: str) -> str:
        response = self.upstream.request("PUT", f"/v2/{self.path}/manifests/{tag}",
                                         self.scope("pull,push"),
                                         {"Content-Type": media_type}, body, expect=(201,))
        response.close()
        return oci.sha256_digest(body)
