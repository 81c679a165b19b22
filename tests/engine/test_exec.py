"""Exec: processes started inside a running container, confined as its init is."""

import hashlib
import os
import subprocess
import sys
import threading
import time

import pytest

from workers.engine.bootstrap import BUSYBOX_REFERENCE
from workers.engine.runtime import RuntimeError_, wait_for

pytestmark = pytest.mark.usefixtures("needs_root")


def start(runtime, *args, name="c1", **spec):
    runtime.create(name, {"image": BUSYBOX_REFERENCE, "args": list(args), **spec})
    return runtime.start(name)


def read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks)


def run(runtime, *args, name="c1", **spec) -> tuple[int, str, str]:
    process = runtime.exec(name, {"args": list(args), **spec})
    try:
        out, err = read_all(process.stdout), read_all(process.stderr)
        return process.wait(), out.decode(), err.decode()
    finally:
        process.close()


def read_until(fd: int, marker: bytes, timeout: float = 5) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while marker not in seen and time.monotonic() < deadline:
        seen += os.read(fd, 4096)
    return seen


def test_exit_code_and_separate_streams(runtime):
    start(runtime, "sleep", "60")
    code, out, err = run(runtime, "sh", "-c", "echo out; echo err >&2; exit 7")
    assert (code, out, err) == (7, "out\n", "err\n")


def test_env_user_and_working_dir(runtime):
    start(runtime, "sleep", "60", env=["FROM_CONTAINER=1"])
    code, out, _ = run(runtime, "sh", "-c", "echo $FROM_CONTAINER $EXTRA $HOME; id -u; pwd",
                       env=["EXTRA=x"], user="nobody", cwd="/tmp")
    assert code == 0
    assert out.split() == ["1", "x", "/home", "65534", "/tmp"]


def test_stdin_is_delivered_and_closed(runtime):
    start(runtime, "sleep", "60")
    process = runtime.exec("c1", {"args": ["sh", "-c", "wc -l"], "stdin": True})
    os.write(process.stdin, b"one\ntwo\nthree\n")
    process.close_stdin()
    assert read_all(process.stdout).strip() == b"3"
    assert process.wait() == 0
    process.close()


def test_without_stdin_the_command_reads_end_of_file(runtime):
    start(runtime, "sleep", "60")
    assert run(runtime, "cat")[:2] == (0, "")


def test_terminal_with_resize(runtime):
    start(runtime, "sleep", "60")
    process = runtime.exec("c1", {"args": ["sh"], "tty": True})
    try:
        process.resize(33, 101)
        os.write(process.terminal, b"stty size; tty; exit 4\n")
        output = read_until(process.terminal, b"/dev/pts/")
        assert b"33 101" in output and b"/dev/pts/" in output
        assert process.wait() == 4
    finally:
        process.close()


def test_many_at_once(runtime):
    start(runtime, "sleep", "60")
    results = {}

    def one(number: int) -> None:
        results[number] = run(runtime, "sh", "-c", f"sleep 0.3; echo {number}; exit {number}")

    threads = [threading.Thread(target=one, args=(n,)) for n in range(12)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {n: (code, out) for n, (code, out, _) in results.items()} == \
        {n: (n, f"{n}\n") for n in range(12)}
    assert time.monotonic() - began < 3  # they ran side by side, not one after another


def test_kill_ends_the_process_with_its_signal(runtime):
    start(runtime, "sleep", "60")
    process = runtime.exec("c1", {"args": ["sleep", "30"]})
    process.kill(15)
    assert process.wait() == 128 + 15
    process.close()


def test_confined_as_the_container(runtime):
    start(runtime, "sleep", "60", no_new_privileges=True)
    code, out, _ = run(runtime, "sh", "-c", "grep -E '^(CapBnd|CapEff|NoNewPrivs|Seccomp):' "
                       "/proc/self/status; unshare -m true || echo unshare-denied; "
                       "cat /proc/self/cgroup")
    assert code == 0
    assert "CapBnd:\t00000000a80425fb" in out and "CapEff:\t00000000a80425fb" in out
    assert "NoNewPrivs:\t1" in out and "Seccomp:\t2" in out
    assert "unshare-denied" in out
    assert "/c1" in out  # the container's cgroup, so its limits apply to the exec


def test_device_nodes_made_by_an_exec_do_not_open(runtime):
    start(runtime, "sleep", "60")
    _, out, err = run(runtime, "sh", "-c", "mknod /tmp/k c 1 11; echo x > /tmp/k || "
                      "echo kmsg-refused; head -c3 /dev/zero | wc -c")
    assert "kmsg-refused" in out and "Operation not permitted" in err
    assert out.split()[-1] == "3"


def test_a_non_root_user_has_no_capabilities(runtime):
    start(runtime, "sleep", "60")
    _, out, _ = run(runtime, "grep", "CapEff", "/proc/self/status", user="nobody")
    assert out.split() == ["CapEff:", "0000000000000000"]


def test_sees_only_the_container_processes(runtime):
    start(runtime, "sleep", "60")
    _, out, _ = run(runtime, "ps", "-o", "pid,comm")
    rows = [line.split() for line in out.splitlines()[1:]]
    assert [row[1] for row in rows] == ["sleep", "ps"]
    assert rows[0][0] == "1"


def test_host_python_is_out_of_reach_while_execs_start(runtime):
    before = _digest(sys.executable)
    # The container watches every process that appears, as an attacker would wait
    # for an exec that is still the host's Python.
    start(runtime, "sh", "-c", "while :; do for p in /proc/[0-9]*; do readlink $p/exe; "
          "echo junk 2>/dev/null > $p/exe; done; done > /tmp/seen 2>/dev/null")
    for _ in range(20):
        assert run(runtime, "true")[0] == 0
    _, seen, _ = run(runtime, "sort", "-u", "/tmp/seen")
    assert "python" not in seen
    assert _digest(sys.executable) == before


def _digest(path: str) -> str:
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def test_unknown_command_is_a_clear_error(runtime):
    start(runtime, "sleep", "60")
    with pytest.raises(RuntimeError_, match='"nope": executable file not found'):
        runtime.exec("c1", {"args": ["nope"]})


def test_refused_unless_running(runtime):
    runtime.create("c1", {"image": BUSYBOX_REFERENCE, "args": ["sleep", "60"]})
    with pytest.raises(RuntimeError_, match="not running"):
        runtime.exec("c1", {"args": ["true"]})
    runtime.start("c1")
    runtime.pause("c1")
    with pytest.raises(RuntimeError_, match="paused"):
        runtime.exec("c1", {"args": ["true"]})
    runtime.unpause("c1")
    assert run(runtime, "true")[0] == 0


@pytest.mark.parametrize("spec", [{"args": []}, {"args": "ls"}, {"args": ["ls"], "cwd": "tmp"},
                                  {"args": ["ls"], "env": ["NOEQUALS"]}])
def test_bad_specs_are_refused(runtime, spec):
    start(runtime, "sleep", "60")
    with pytest.raises(RuntimeError_):
        runtime.exec("c1", spec)


def test_ends_with_its_container(runtime):
    start(runtime, "sleep", "60")
    process = runtime.exec("c1", {"args": ["sleep", "60"]})
    runtime.stop("c1", timeout=0)
    assert process.wait() == 128 + 9
    process.close()


# Attach: input to the container's own stdio.

def test_attach_writes_to_open_stdin(runtime):
    start(runtime, "sh", "-c", "read line; echo got $line", open_stdin=True)
    attached = runtime.attach_input("c1")
    attached.write(b"hello\n")
    attached.close()
    assert runtime.wait("c1", 10)
    assert runtime.logs("c1") == "got hello\n"


def test_attach_to_a_terminal_with_resize(runtime):
    start(runtime, "sh", tty=True, open_stdin=True)
    attached = runtime.attach_input("c1")
    attached.resize(12, 34)
    attached.write(b"stty size; exit 6\n")
    attached.close()
    assert runtime.wait("c1", 10)
    assert "12 34" in runtime.logs("c1")
    assert runtime.state("c1")["exit_code"] == 6


def test_attach_needs_stdin_or_a_terminal(runtime):
    start(runtime, "sleep", "60")
    with pytest.raises(RuntimeError_, match="no open stdin"):
        runtime.attach_input("c1")


def test_a_late_kill_never_reaches_a_recycled_pid(runtime):
    start(runtime, "sleep", "60")
    process = runtime.exec("c1", {"args": ["true"]})
    # Reaped by its waiter, but its end not read yet (a health check's timer may fire now).
    assert wait_for(lambda: not os.path.exists(f"/proc/{process.pid}"), 5)
    # Make the host hand the exec's old pid to an unrelated process, as a busy host may.
    with open("/proc/sys/kernel/ns_last_pid", "w") as last_pid:
        last_pid.write(str(process.pid - 1))
    bystander = subprocess.Popen(["sleep", "30"])
    try:
        assert bystander.pid == process.pid
        process.kill()
        time.sleep(0.2)
        assert bystander.poll() is None
        assert process.wait() == 0
    finally:
        bystander.kill()
        bystander.wait()
        process.close()
    assert bystander.returncode == -9  # alive until we killed it ourselves


def test_a_fifo_as_dev_null_does_not_hang_an_exec(runtime):
    start(runtime, "sh", "-c", "rm /dev/null && mkfifo /dev/null && sleep 60")
    time.sleep(0.3)
    began = time.monotonic()
    code, out, _ = run(runtime, "sh", "-c", "cat; echo done")
    assert (code, out) == (0, "done\n")
    assert time.monotonic() - began < 5


def test_an_oversized_request_is_refused_and_blocks_no_one(runtime):
    start(runtime, "sleep", "60")
    with pytest.raises(RuntimeError_, match="larger than"):
        runtime.exec("c1", {"args": ["true"], "env": [f"BIG={'x' * 300_000}"]})
    assert run(runtime, "true")[0] == 0


def test_a_non_root_terminal_belongs_to_its_user(runtime):
    start(runtime, "sleep", "60")
    process = runtime.exec("c1", {"args": ["sh", "-c", "stat -c %u $(tty)"], "tty": True,
                                  "user": "nobody"})
    try:
        assert b"65534" in read_until(process.terminal, b"65534")
        assert process.wait() == 0
    finally:
        process.close()


def test_closing_an_attached_stdin_gives_the_container_end_of_file(runtime):
    start(runtime, "sh", "-c", "wc -l; echo done", open_stdin=True)
    attached = runtime.attach_input("c1")
    attached.write(b"one\ntwo\n")
    attached.close()
    time.sleep(0.3)
    assert runtime.state("c1")["state"] == "running"  # the supervisor still holds stdin
    runtime.close_stdin("c1")
    assert runtime.wait("c1", 10)
    assert runtime.logs("c1").split() == ["2", "done"]
