"""`python -m workers.engine`: the engine on its own, without the control plane.

    run --root R [--name ID] IMAGE CMD...   create, start and wait; print the logs
    stop-all --root R                       stop every running container, and the zygote
    bootstrap --root R                      put busybox:latest in the store
"""

import argparse
import secrets
import sys

from .bootstrap import BUSYBOX_REFERENCE, bootstrap_busybox
from .runtime import Runtime, RuntimeError_
from .state import LIVE
from .store import ContentStore


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workers.engine")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run")
    run.add_argument("--name")
    run.add_argument("image")
    run.add_argument("args", nargs=argparse.REMAINDER)
    sub.add_parser("stop-all")
    sub.add_parser("bootstrap")
    for command in sub.choices.values():
        command.add_argument("--root", default="/var/lib/berth")
    args = parser.parse_args(argv)
    store = ContentStore(f"{args.root}/store")
    runtime = Runtime(args.root, store)
    try:
        return COMMANDS[args.command](runtime, args)
    except RuntimeError_ as exc:
        print(f"berth: {exc}", file=sys.stderr)
        return 125


def _run(runtime: Runtime, args) -> int:
    container_id = args.name or secrets.token_hex(32)
    runtime.create(container_id, {"image": args.image, "args": args.args})
    runtime.start(container_id)
    runtime.wait(container_id, None)
    sys.stdout.write(runtime.logs(container_id))
    final = runtime.remove(container_id)
    if final.get("error"):
        print(f"berth: {final['error']}", file=sys.stderr)
    return final["exit_code"] if final["exit_code"] is not None else 125


def _stop_all(runtime: Runtime, args) -> int:
    for container_id in runtime.ids():
        if runtime.state(container_id)["state"] in LIVE:
            runtime.stop(container_id, timeout=10)
    runtime.shutdown()
    return 0


def _bootstrap(runtime: Runtime, args) -> int:
    record = bootstrap_busybox(runtime.store, BUSYBOX_REFERENCE)
    print(record.digest)
    return 0


COMMANDS = {"run": _run, "stop-all": _stop_all, "bootstrap": _bootstrap}

if __name__ == "__main__":
    sys.exit(main())
