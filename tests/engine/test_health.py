"""Health checks: the merged configuration, Docker's verdict rules, and real probes."""

import pytest

from workers.engine import health
from workers.engine.bootstrap import BUSYBOX_REFERENCE

CHECK = health.HealthCheck(args=["true"], interval=1, timeout=1, retries=3, start_period=0)


def probe(code: int) -> health.Probe:
    return health.Probe("s", "e", code, f"exit {code}")


def test_image_check_with_container_overrides():
    image = {"Test": ["CMD-SHELL", "wget -q localhost"], "Interval": 5_000_000_000,
             "Retries": 5}
    merged = health.HealthCheck.merged(image, {"timeout": 2.5})
    assert merged == health.HealthCheck(args=["/bin/sh", "-c", "wget -q localhost"],
                                        interval=5.0, timeout=2.5, retries=5, start_period=0.0)
    assert health.HealthCheck.merged(image, {"test": ["NONE"]}) is None
    assert health.HealthCheck.merged(None, None) is None
    with pytest.raises(health.HealthError):
        health.HealthCheck.merged({"Test": ["CMD"]}, None)


def test_verdicts_follow_docker():
    verdict = health.Health()
    assert not verdict.record(probe(1), CHECK, in_start_period=False)
    assert (verdict.status, verdict.failing_streak) == ("starting", 1)
    assert verdict.record(probe(0), CHECK, in_start_period=False)
    assert (verdict.status, verdict.failing_streak) == ("healthy", 0)
    for expected in ("healthy", "healthy", "unhealthy"):
        verdict.record(probe(2), CHECK, in_start_period=False)
        assert verdict.status == expected
    assert len(verdict.log) == health.KEPT_PROBES


def test_failures_in_the_start_period_do_not_count_until_healthy():
    verdict = health.Health()
    for _ in range(5):
        verdict.record(probe(1), CHECK, in_start_period=True)
    assert (verdict.status, verdict.failing_streak) == ("starting", 0)


@pytest.mark.usefixtures("needs_root")
def test_probes_run_in_the_container(runtime):
    runtime.create("c1", {"image": BUSYBOX_REFERENCE, "args": ["sleep", "60"]})
    runtime.start("c1")
    ok = health.probe(runtime, "c1", health.HealthCheck(args=["sh", "-c", "echo fine; hostname"]))
    assert ok.exit_code == 0 and ok.output.startswith("fine\n")
    bad = health.probe(runtime, "c1", health.HealthCheck(args=["sh", "-c", "echo no >&2; exit 3"]))
    assert (bad.exit_code, bad.output) == (3, "no\n")
    slow = health.probe(runtime, "c1", health.HealthCheck(args=["sleep", "30"], timeout=0.3))
    assert slow.exit_code == -1 and "exceeded timeout" in slow.output
    noisy = health.HealthCheck(args=["sh", "-c", "yes | head -c 100000"])
    loud = health.probe(runtime, "c1", noisy)
    assert len(loud.output) == health.OUTPUT_LIMIT
