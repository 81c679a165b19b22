"""A slow loopback proxy in front of a registry, so a pull lasts long enough to watch."""

import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.engine.registries import free_port

PASSED_HEADERS = ("Content-Type", "Content-Length", "Docker-Content-Digest",
                  "Docker-Distribution-Api-Version", "Location", "WWW-Authenticate")


class ThrottledProxy:
    def __init__(self, upstream: str, bytes_per_second: int):
        self.upstream = upstream
        self.rate = bytes_per_second
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.server = None

    def start(self) -> "ThrottledProxy":
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the stdlib's name
                self._forward(body=True)

            def do_HEAD(self):  # noqa: N802
                self._forward(body=False)

            def _forward(self, body: bool):
                request = urllib.request.Request(
                    f"http://{proxy.upstream}{self.path}", method=self.command,
                    headers={k: v for k, v in self.headers.items()
                             if k.lower() in ("accept", "authorization", "range")})
                try:
                    response = urllib.request.urlopen(request, timeout=30)
                except urllib.error.HTTPError as error:
                    response = error
                self.send_response(response.status)
                for name in PASSED_HEADERS:
                    if response.headers.get(name):
                        self.send_header(name, response.headers[name])
                self.end_headers()
                if not body:
                    return
                chunk = max(1, proxy.rate // 20)
                while data := response.read(chunk):
                    self.wfile.write(data)
                    time.sleep(0.05)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
