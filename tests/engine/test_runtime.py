import os
import signal

import pytest

from workers.engine.bootstrap import BUSYBOX_REFERENCE
from workers.engine.runtime import NoSuchContainer, RuntimeError_

pytestmark = pytest.mark.usefixtures("needs_root")


def run(runtime, *args, name="c1", **spec):
    runtime.create(name, {"image": BUSYBOX_REFERENCE, "args": list(args), **spec})
    runtime.start(name)
    assert runtime.wait(name, 20)
    return runtime.state(name), runtime.logs(name)


def mounts_under(path) -> list[str]:
    with open("/proc/self/mounts") as mounts:
        return [line for line in mounts if str(path) in line]


def test_echo_hello(runtime):
    state, output = run(runtime, "echo", "hello")
    assert output == "hello\n"
    assert state["state"] == "exited" and state["exit_code"] == 0
    assert state["started_at"] <= state["finished_at"]


def test_exit_code_and_streams(runtime):
    state, _ = run(runtime, "sh", "-c", "echo out; echo err >&2; exit 3")
    assert state["exit_code"] == 3
    records = {(r.stream, r.content) for r in _records(runtime, "c1")}
    assert records == {("stdout", "out"), ("stderr", "err")}


def _records(runtime, name):
    from workers.engine.logs import read_records

    return read_records(runtime.existing(name) / "container.log")


@pytest.mark.parametrize("kind", ["pid", "mnt", "uts", "ipc", "net"])
def test_new_namespaces(runtime, kind):
    _, output = run(runtime, "readlink", f"/proc/self/ns/{kind}")
    assert output.strip() != os.readlink(f"/proc/self/ns/{kind}")


def test_process_is_pid_1_with_its_own_hostname(runtime):
    _, output = run(runtime, "sh", "-c", "echo $$; hostname", hostname="box1")
    assert output.split() == ["1", "box1"]


def test_root_is_the_image_and_the_host_is_unreachable(runtime, tmp_path):
    _, output = run(runtime, "sh", "-c",
                    f"ls /; test -e {tmp_path} && echo LEAK; test -e /root/.. && echo ok")
    assert "bin" in output.split() and "LEAK" not in output


def test_writes_stay_in_the_container_layer(runtime, busybox, store):
    run(runtime, "sh", "-c", "echo data > /written")
    assert (runtime.existing("c1") / "upper" / "written").read_text() == "data\n"
    assert not (store.layer_path(busybox.chain_ids[0]) / "written").exists()


def test_kernel_filesystems_are_confined(runtime):
    _, output = run(runtime, "sh", "-c",
                    "wc -c < /proc/timer_list; wc -c < /proc/keys; "
                    "touch /sys/x 2>&1 || echo sys-ro; "
                    "echo 1 > /proc/sys/kernel/domainname 2>&1 || echo procsys-ro; "
                    "ls /dev")
    lines = output.split("\n")
    assert [line.strip() for line in lines[:2]] == ["0", "0"]  # masked by /dev/null
    assert "sys-ro" in output and "procsys-ro" in output
    for device in ("null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "mqueue"):
        assert device in output.split()


def test_only_loopback_network(runtime):
    _, output = run(runtime, "sh", "-c", "ls /sys/class/net; ip link show lo")
    assert output.split("\n")[0] == "lo"
    assert "UP" in output


def test_unknown_command_fails_with_127(runtime):
    state, _ = run(runtime, "no-such-command")
    assert state["exit_code"] == 127
    assert "no-such-command" in state["error"]


def test_bad_working_dir_is_reported(runtime):
    state, _ = run(runtime, "true", cwd="/does/not/exist")
    assert state["exit_code"] != 0 and "/does/not/exist" in state["error"]


def test_stop_escalates_to_sigkill(runtime):
    runtime.create("c1", {"image": BUSYBOX_REFERENCE, "args": ["sleep", "100"]})
    runtime.start("c1")
    final = runtime.stop("c1", timeout=0.5)
    # sleep as pid 1 has no SIGTERM handler, so the kernel ignores TERM: KILL follows.
    assert final["state"] == "exited" and final["exit_code"] == 128 + signal.SIGKILL


def test_remove_running_needs_force_and_leaves_no_mounts(runtime, tmp_path):
    runtime.create("c1", {"image": BUSYBOX_REFERENCE, "args": ["sleep", "100"]})
    runtime.start("c1")
    with pytest.raises(RuntimeError_, match="running"):
        runtime.remove("c1")
    runtime.remove("c1", force=True)
    with pytest.raises(NoSuchContainer):
        runtime.state("c1")
    assert mounts_under(tmp_path) == []


def test_mounts_are_private_to_the_container(runtime, tmp_path):
    runtime.create("c1", {"image": BUSYBOX_REFERENCE, "args": ["sleep", "100"]})
    runtime.start("c1")
    assert mounts_under(tmp_path) == []
    runtime.stop("c1", timeout=0)


def test_env_and_image_defaults(runtime):
    _, output = run(runtime, "sh", "-c", "echo $PATH; echo $GREETING", env=["GREETING=hi"])
    assert output.split() == [
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "hi"]


def test_image_cmd_is_the_default(runtime):
    runtime.create("c1", {"image": BUSYBOX_REFERENCE, "args": []})
    assert runtime.state("c1")["state"] == "created"
    config = (runtime.existing("c1") / "config.json").read_text()
    assert '"args": ["sh"]' in config


def test_invalid_ids_and_unknown_images_are_refused(runtime):
    with pytest.raises(RuntimeError_, match="invalid container id"):
        runtime.create("../x", {"image": BUSYBOX_REFERENCE, "args": ["true"]})
    with pytest.raises(RuntimeError_, match="no such image"):
        runtime.create("c2", {"image": "missing:latest", "args": ["true"]})


def test_capabilities_are_dockers_default_set(runtime):
    _, output = run(runtime, "sh", "-c",
                    "grep Cap /proc/1/status; mount -t tmpfs t /tmp 2>/dev/null || echo no-mount")
    fields = dict(line.split(":\t") for line in output.splitlines() if line.startswith("Cap"))
    assert fields == {"CapInh": "0000000000000000", "CapPrm": "00000000a80425fb",
                      "CapEff": "00000000a80425fb", "CapBnd": "00000000a80425fb",
                      "CapAmb": "0000000000000000"}
    assert "no-mount" in output


def test_tty_gives_a_terminal_from_the_containers_own_devpts(runtime):
    state, output = run(runtime, "sh", "-c",
                        "test -t 0 && test -t 1 && echo is-a-tty; tty; echo err >&2", tty=True)
    assert state["exit_code"] == 0
    lines = [line.rstrip("\r") for line in output.splitlines()]
    assert lines == ["is-a-tty", "/dev/pts/0", "err"]


def test_open_stdin_stays_open_while_plain_stdin_is_empty(runtime):
    state, output = run(runtime, "sh", "-c", "read line || echo eof")
    assert output == "eof\n"  # read hit end of file at once
    runtime.create("c2", {"image": BUSYBOX_REFERENCE, "args": ["sh", "-c", "read line"],
                          "open_stdin": True})
    runtime.start("c2")
    assert not runtime.wait("c2", 0.5)  # still waiting for input
    assert runtime.state("c2")["state"] == "running"
    runtime.stop("c2", timeout=0)


def test_a_zygote_that_died_is_replaced(runtime):
    import os as _os

    run(runtime, "true")
    zygote = int((runtime.engine_root / "zygote.pid").read_text())
    _os.kill(zygote, signal.SIGKILL)  # its socket file stays behind, as after a crash
    from workers.engine.runtime import wait_for

    def gone() -> bool:  # dead: absent, or a zombie its spawner has not reaped
        try:
            return open(f"/proc/{zygote}/stat").read().rsplit(")", 1)[1].split()[0] == "Z"
        except OSError:
            return True

    assert wait_for(gone, 5)
    state, output = run(runtime, "echo", "again", name="c2")
    assert output == "again\n" and state["exit_code"] == 0
