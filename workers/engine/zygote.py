"""Forks container shims from a warm, single-threaded Python process.

Starting a fresh interpreter for every container costs tens of milliseconds
and several megabytes; a fork of this process costs about a millisecond and
shares its pages. One zygote runs per engine root, listening on a root-only
unix socket. Each shim is its own session and outlives the zygote, the agent,
or both (live restore); the zygote only reaps the shims that end before it.

    python -m workers.engine.zygote <root> [<fd of the interpreter copy to close>]
"""

import gc
import json
import os
import signal
import socket
import sys
import traceback
from pathlib import Path

from . import execs, seccomp, shim

SOCKET = "zygote.sock"
PIDFILE = "zygote.pid"
MAX_REQUEST = 1 << 20  # an exec's command and env
MAX_FDS = 3
RECEIVE_TIMEOUT = 5.0


def serve(root: Path) -> None:
    seccomp.default_filter()  # built once here, inherited by every shim
    path = root / SOCKET
    path.unlink(missing_ok=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o077)
    # Bound under another name and renamed once listening: a starter that sees the
    # socket file must never connect before listen() (ECONNREFUSED under load).
    bound = path.with_name(f".{SOCKET}.{os.getpid()}")
    bound.unlink(missing_ok=True)
    listener.bind(str(bound))
    os.umask(old_umask)
    listener.listen(64)
    os.rename(bound, path)
    (root / PIDFILE).write_text(f"{os.getpid()}\n")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGCHLD, _reap)
    # Everything loaded so far is shared with every shim; keep the collector off
    # those pages so forking does not turn them into private copies.
    gc.freeze()
    while True:
        connection, _ = listener.accept()
        try:
            _spawn(listener, connection, root)
        except Exception:  # noqa: BLE001 - one bad request must not end the zygote
            traceback.print_exc()
        finally:
            connection.close()


def _spawn(listener: socket.socket, connection: socket.socket, root: Path) -> None:
    fds: list[int] = []
    try:
        # One slow or silent client must not hold up every start on the host.
        connection.settimeout(RECEIVE_TIMEOUT)
        request = _receive(connection, fds)
        connection.settimeout(None)
        container_dir = Path(request.get("exec") or request["dir"]).resolve()
        if container_dir.parent != (root / "containers").resolve():
            connection.sendall(b'{"ok": false, "error": "not a container of this root"}\n')
            return
        if os.fork() == 0:
            listener.close()
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            if "exec" in request:
                execs.serve(connection, container_dir, request.get("spec") or {}, fds)
            _child(connection, container_dir)
    finally:
        for fd in fds:
            os.close(fd)


def _receive(connection: socket.socket, fds: list[int]) -> dict:
    """One JSON line; the fds an exec request passes with its first byte go to `fds`."""
    data, received, _, _ = socket.recv_fds(connection, 65536, MAX_FDS)
    fds.extend(received)
    while not data.endswith(b"\n") and len(data) < MAX_REQUEST:
        more = connection.recv(65536)
        if not more:
            break
        data += more
    return json.loads(data)


def _reap(*_) -> None:
    """Shims are the zygote's children until it ends: collect the ones that finished."""
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass


def _child(connection: socket.socket, container_dir: Path) -> None:
    code = 0
    try:
        gc.disable()  # a shim makes few objects and no cycles worth collecting
        report = connection.makefile("wb")
        connection.close()  # the report file holds the socket until the first message
        code = shim.run_detached(container_dir, report)
    finally:
        os._exit(code)


def main(argv: list[str]) -> int:
    root = Path(argv[1]).resolve()
    if len(argv) > 2:
        # The sealed interpreter copy we were started from (sealed.py): the exec
        # needed it open, and no shim or container may inherit a handle on it.
        os.close(int(argv[2]))
    serve(root)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
