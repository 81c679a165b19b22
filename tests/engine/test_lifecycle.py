"""Limits, restart policies, pause, update, stats and log rotation, on real cgroups."""

import time

import pytest

from workers.engine.bootstrap import BUSYBOX_REFERENCE
from workers.engine.cgroups import for_container
from workers.engine.runtime import RuntimeError_, wait_for

pytestmark = pytest.mark.usefixtures("needs_root")
MIB = 1 << 20


def start(runtime, *args, name="c1", **spec):
    runtime.create(name, {"image": BUSYBOX_REFERENCE, "args": list(args), **spec})
    return runtime.start(name)


def finish(runtime, name="c1", timeout=30):
    assert runtime.wait(name, timeout)
    return runtime.state(name)


def test_memory_limit_ends_in_a_reported_oom_kill(runtime):
    # 64 MiB of memory and no extra swap; the shell's string grows until the kernel kills it.
    start(runtime, "sh", "-c", "x=0123456789; while :; do x=$x$x; done",
          limits={"memory": 64 * MIB, "memory_swap": 64 * MIB})
    state = finish(runtime)
    assert state["oom_killed"] is True
    assert state["exit_code"] == 137


def test_pids_limit_stops_a_fork_bomb(runtime):
    # The inner shell forks until the kernel refuses; each child it got is listed.
    start(runtime, "sh", "-c",
          "sh -c 'i=0; while [ $i -lt 100 ]; do sleep 5 & echo $! >> /tmp/started; "
          "i=$((i+1)); done' 2>/dev/null; kill -9 -1 2>/dev/null; wait; wc -l < /tmp/started",
          limits={"pids": 20})
    state = finish(runtime)
    started = int(runtime.logs("c1").split()[-1])
    assert 10 <= started <= 18  # 20 minus the two shells
    assert state["exit_code"] == 0


def test_cpu_quota_is_enforced_within_ten_percent(runtime):
    start(runtime, "sh", "-c", "while :; do :; done", limits={"cpu_quota": 50_000})
    time.sleep(0.5)
    first, began = runtime.stats("c1")["cpu_usage_ns"], time.monotonic()
    time.sleep(3)
    used = (runtime.stats("c1")["cpu_usage_ns"] - first) / 1e9
    share = used / (time.monotonic() - began)
    runtime.stop("c1", timeout=0)
    assert 0.45 <= share <= 0.55, share


def test_limits_change_live(runtime):
    start(runtime, "sleep", "100", limits={"memory": 64 * MIB})
    cgroup = for_container("c1")
    runtime.update("c1", {"memory": 128 * MIB, "pids": 50})
    assert runtime.stats("c1")["memory_limit"] == 128 * MIB
    pids_max = next(p / "pids.max" for p in cgroup.paths() if (p / "pids.max").exists())
    assert pids_max.read_text().strip() == "50"
    runtime.stop("c1", timeout=0)


def test_cgroups_are_removed_after_exit(runtime):
    start(runtime, "true")
    finish(runtime)
    assert not any(path.exists() for path in for_container("c1").paths())


def test_stats_read_cpu_memory_pids_and_network(runtime):
    start(runtime, "sh", "-c", "sleep 100 & sleep 100")  # sh execs the last sleep: 2 left
    assert wait_for(lambda: runtime.stats("c1")["pids"] == 2, 5)
    figures = runtime.stats("c1")
    assert figures["memory_usage"] > 0 and figures["cpu_usage_ns"] > 0
    assert figures["networks"] == {}  # only loopback, which is not counted
    runtime.stop("c1", timeout=0)


def test_pause_and_unpause(runtime, tmp_path):
    start(runtime, "sh", "-c", "while :; do date +%s%N > /tmp/tick; sleep 0.05; done")
    upper = runtime.existing("c1") / "upper" / "tmp" / "tick"
    assert wait_for(upper.exists, 5)
    paused = runtime.pause("c1")
    assert paused["state"] == "paused"
    time.sleep(0.2)
    frozen_at = upper.read_text()
    time.sleep(0.3)
    assert upper.read_text() == frozen_at
    with pytest.raises(RuntimeError_, match="cannot pause"):
        runtime.pause("c1")
    assert runtime.unpause("c1")["state"] == "running"
    assert wait_for(lambda: upper.read_text() != frozen_at, 2)
    runtime.stop("c1", timeout=0)


def test_stop_uses_the_images_stop_signal(runtime):
    start(runtime, "sh", "-c", "trap 'echo got-usr1; exit 0' USR1; while :; do sleep 0.05; done",
          stop_signal="SIGUSR1")
    time.sleep(0.3)
    final = runtime.stop("c1", timeout=5)
    assert final["exit_code"] == 0
    assert "got-usr1" in runtime.logs("c1")


def test_on_failure_restarts_up_to_its_limit(runtime):
    start(runtime, "sh", "-c", "echo run; exit 3", restart="on-failure:2")
    state = finish(runtime)
    assert state["exit_code"] == 3 and state["restart_count"] == 2
    assert runtime.logs("c1").split() == ["run", "run", "run"]


def test_always_restarts_even_after_success_until_stopped(runtime):
    start(runtime, "sh", "-c", "echo run; sleep 0.1", restart="always")
    assert wait_for(lambda: runtime.logs("c1").split().count("run") >= 3, 10)
    runtime.stop("c1", timeout=1)
    state = finish(runtime)
    assert state["state"] == "exited"
    count = runtime.logs("c1").split().count("run")
    time.sleep(0.5)
    assert runtime.logs("c1").split().count("run") == count


def test_no_policy_means_no_restart(runtime):
    start(runtime, "sh", "-c", "echo run; exit 1")
    state = finish(runtime)
    assert state["restart_count"] == 0 and runtime.logs("c1") == "run\n"


def test_bad_restart_policy_is_refused(runtime):
    with pytest.raises(RuntimeError_, match="invalid restart policy"):
        runtime.create("c2", {"image": BUSYBOX_REFERENCE, "args": ["true"],
                              "restart": "sometimes"})


def test_logs_rotate_by_size(runtime):
    start(runtime, "sh", "-c", "seq 1 20000", log={"max_size": 20000, "max_files": 3})
    finish(runtime)
    directory = runtime.existing("c1")
    files = sorted(p.name for p in directory.glob("container.log*"))
    assert files == ["container.log", "container.log.1", "container.log.2"]
    assert all((directory / name).stat().st_size <= 20000 + 200 for name in files)
    lines = runtime.logs("c1").split()
    assert lines[-1] == "20000"
    assert [int(x) for x in lines] == list(range(int(lines[0]), 20001))


def test_a_frozen_cgroup_left_by_a_crashed_run_does_not_stop_the_next(runtime):
    from workers.engine import cgroups

    stale = for_container("c1")
    stale.create(cgroups.Limits())
    stale.freeze(True)
    try:
        start(runtime, "echo", "alive")
        assert finish(runtime, timeout=10)["exit_code"] == 0
        assert runtime.logs("c1") == "alive\n"
    finally:
        if all(path.exists() for path in stale.paths()):  # the shim removes it on exit
            stale.freeze(False)
            stale.remove()


def test_stop_with_any_stop_signal_keeps_an_always_container_down(runtime):
    start(runtime, "sh", "-c", "trap 'exit 0' QUIT; while :; do sleep 0.05; done",
          stop_signal="SIGQUIT", restart="always")
    time.sleep(0.3)
    final = runtime.stop("c1", timeout=5)
    assert final["state"] == "exited" and final["exit_code"] == 0
    time.sleep(0.5)
    assert runtime.state("c1")["state"] == "exited"
