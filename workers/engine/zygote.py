"""Forks container shims from a warm, single-threaded Python process.

Starting a fresh interpreter for every container costs tens of milliseconds
and several megabytes; a fork of this process costs about a millisecond and
shares its pages. One zygote runs per engine root, listening on a root-only
unix socket. It forks twice per container, so the shim's parent is gone at
once and the shim outlives the zygote, the agent, or both (live restore).

    python -m workers.engine.zygote <root>
"""

import json
import os
import signal
import socket
import sys
import traceback
from pathlib import Path

from . import seccomp, shim

SOCKET = "zygote.sock"
PIDFILE = "zygote.pid"
MAX_REQUEST = 4096


def serve(root: Path) -> None:
    seccomp._libseccomp()  # loaded once here, inherited by every shim
    path = root / SOCKET
    path.unlink(missing_ok=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o077)
    listener.bind(str(path))
    os.umask(old_umask)
    listener.listen(64)
    (root / PIDFILE).write_text(f"{os.getpid()}\n")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        connection, _ = listener.accept()
        try:
            _spawn(listener, connection, root)
        except Exception:  # noqa: BLE001 - one bad request must not end the zygote
            traceback.print_exc()
        finally:
            connection.close()


def _spawn(listener: socket.socket, connection: socket.socket, root: Path) -> None:
    request = json.loads(connection.makefile("rb").readline(MAX_REQUEST))
    container_dir = Path(request["dir"]).resolve()
    if container_dir.parent != (root / "containers").resolve():
        connection.sendall(b'{"ok": false, "error": "not a container of this root"}\n')
        return
    pid = os.fork()
    if pid == 0:
        _child(listener, connection, container_dir)
    os.waitpid(pid, 0)


def _child(listener: socket.socket, connection: socket.socket, container_dir: Path) -> None:
    code = 0
    try:
        listener.close()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if os.fork() == 0:
            report = connection.makefile("wb")
            connection.close()  # the report file holds the socket until the first message
            code = shim.run_detached(container_dir, report)
    finally:
        os._exit(code)


def main(argv: list[str]) -> int:
    root = Path(argv[1]).resolve()
    serve(root)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
