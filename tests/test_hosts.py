"""Agent → control plane host tasks (register, heartbeat, mark_offline) and the hosts API."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.containers.models import Container
from apps.hosts import tasks
from apps.hosts.choices import HostStatus
from apps.hosts.models import Host
from apps.images.models import Image
from berth.celery import app as celery_app
from berth.errors import InvalidInput
from tests.fixtures import BUSYBOX, make_host

pytestmark = pytest.mark.django_db


def facts(name="node-1", **extra):
    base = {
        "name": name,
        "kernel": "6.1.0",
        "cgroup_version": "v2",
        "cpus": 4,
        "memory_bytes": 8 * 2**30,
        "agent_version": "0.1.0",
        "images": [
            {
                "reference": BUSYBOX,
                "digest": "sha256:" + "a" * 64,
                "image_id": "sha256:" + "b" * 64,
                "size": 4096,
                "created": "2024-01-02T03:04:05.123456789Z",
                "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"]},
            }
        ],
    }
    base.update(extra)
    return base


def test_task_names_and_queue_follow_the_protocol():
    celery_app.loader.import_default_modules()
    for name in (
        "hosts.register",
        "hosts.heartbeat",
        "hosts.mark_offline",
        "containers.report_state",
    ):
        assert name in celery_app.tasks
        assert celery_app.amqp.router.route({}, name)["queue"].name == "control"


def test_register_creates_an_online_host_with_images():
    tasks.register(facts())
    host = Host.objects.get(name="node-1")
    assert host.status == HostStatus.ONLINE
    assert (host.kernel, host.cgroup_version, host.cpus) == ("6.1.0", "v2", 4)
    assert host.memory_bytes == 8 * 2**30 and host.agent_version == "0.1.0"
    assert host.last_heartbeat is not None
    image = Image.objects.get(host=host)
    assert image.reference == BUSYBOX and image.team is None
    assert image.size == 4096 and image.config["Cmd"] == ["sh"]
    assert image.created.year == 2024 and image.created.microsecond == 123456


def test_register_is_an_upsert_and_syncs_images():
    tasks.register(facts())
    again = facts(
        cpus=8,
        images=[{"reference": "alpine:3.20", "digest": "sha256:" + "c" * 64, "size": 1}],
    )
    tasks.register(again)
    host = Host.objects.get(name="node-1")
    assert Host.objects.count() == 1 and host.cpus == 8
    assert list(host.images.values_list("reference", flat=True)) == [
        "docker.io/library/alpine:3.20"
    ]


def test_register_keeps_images_still_used_by_containers(team):
    tasks.register(facts())
    host = Host.objects.get(name="node-1")
    image = host.images.get()
    Container.objects.create(name="c", team=team, host=host, image=image, image_reference=BUSYBOX)
    tasks.register(facts(images=[]))
    assert host.images.filter(pk=image.pk).exists()


def test_register_skips_malformed_images_but_registers_the_host():
    tasks.register(facts(images=[{"reference": "Not Valid"}, "junk", {"reference": "busybox"}]))
    host = Host.objects.get(name="node-1")
    assert list(host.images.values_list("reference", flat=True)) == [BUSYBOX]


@pytest.mark.parametrize(
    "bad", [{"name": ""}, {"name": "has space"}, {"cpus": -1}, {"memory_bytes": "lots"}]
)
def test_register_rejects_bad_facts(bad):
    with pytest.raises(InvalidInput):
        tasks.register(facts(**bad))
    assert not Host.objects.exists()


def test_register_marks_an_offline_host_online_again():
    host = make_host("node-1", online=False)
    tasks.register(facts())
    host.refresh_from_db()
    assert host.status == HostStatus.ONLINE


def test_heartbeat_moves_forward_only():
    host = make_host(online=True)
    now = timezone.now()
    Host.objects.filter(pk=host.pk).update(last_heartbeat=now - timedelta(hours=1))
    tasks.heartbeat(host.name, (now - timedelta(seconds=2)).timestamp())
    host.refresh_from_db()
    newer = host.last_heartbeat
    assert abs((newer - (now - timedelta(seconds=2))).total_seconds()) < 0.001
    tasks.heartbeat(host.name, (now - timedelta(seconds=5)).timestamp())  # late, older
    host.refresh_from_db()
    assert host.last_heartbeat == newer


def test_heartbeat_marks_an_offline_host_online():
    host = make_host(online=False)
    Host.objects.filter(pk=host.pk).update(last_heartbeat=timezone.now() - timedelta(minutes=5))
    tasks.heartbeat(host.name, timezone.now().timestamp())
    host.refresh_from_db()
    assert host.status == HostStatus.ONLINE


def test_a_stale_heartbeat_does_not_revive_a_host(settings):
    host = make_host(online=False)
    Host.objects.filter(pk=host.pk).update(last_heartbeat=timezone.now() - timedelta(hours=1))
    old = timezone.now() - timedelta(seconds=settings.BERTH_HOST_OFFLINE_AFTER + 10)
    tasks.heartbeat(host.name, old.timestamp())
    host.refresh_from_db()
    assert host.status == HostStatus.OFFLINE
    assert abs((host.last_heartbeat - old).total_seconds()) < 0.001


def test_a_heartbeat_from_the_future_is_clamped_to_now():
    host = make_host()
    tasks.heartbeat(host.name, (timezone.now() + timedelta(hours=1)).timestamp())
    host.refresh_from_db()
    assert host.last_heartbeat <= timezone.now()


def test_heartbeat_from_an_unknown_host_is_ignored():
    tasks.heartbeat("ghost", timezone.now().timestamp())
    assert not Host.objects.exists()


def test_heartbeat_with_bad_timestamp_is_rejected():
    host = make_host()
    with pytest.raises(InvalidInput, match="epoch seconds"):
        tasks.heartbeat(host.name, "yesterday")


def test_mark_offline_flags_only_silent_hosts(settings):
    settings.BERTH_HOST_OFFLINE_AFTER = 15
    silent, fresh, never = make_host(), make_host(), make_host()
    Host.objects.filter(pk=silent.pk).update(last_heartbeat=timezone.now() - timedelta(seconds=16))
    Host.objects.filter(pk=never.pk).update(last_heartbeat=None)
    assert tasks.mark_offline() == 2
    statuses = dict(Host.objects.values_list("name", "status"))
    assert statuses == {
        silent.name: HostStatus.OFFLINE,
        fresh.name: HostStatus.ONLINE,
        never.name: HostStatus.OFFLINE,
    }
    assert tasks.mark_offline() == 0


def test_hosts_api_lists_and_reads_by_name_or_id(viewer, outsider, client_for):
    host = make_host("node-7")
    for user in (viewer, outsider):
        client = client_for(user)
        assert client.get("/api/hosts/").json()["count"] == 1
        by_name = client.get("/api/hosts/node-7/").json()
        assert by_name["name"] == "node-7" and by_name["status"] == "online"
        assert client.get(f"/api/hosts/{host.pk}/").json()["name"] == "node-7"
    assert client_for(viewer).get("/api/hosts/nope/").status_code == 404


def test_only_staff_change_host_labels(owner, admin, client_for):
    make_host("node-7")
    body = {"labels": {"zone": "a"}}
    assert client_for(owner).patch("/api/hosts/node-7/", body, format="json").status_code == 403
    response = client_for(admin).patch("/api/hosts/node-7/", body, format="json")
    assert response.status_code == 200 and response.json()["labels"] == {"zone": "a"}
    bad = client_for(admin).patch("/api/hosts/node-7/", {"labels": ["x"]}, format="json")
    assert bad.status_code == 400
    assert client_for(admin).delete("/api/hosts/node-7/").status_code == 405


def test_beat_runs_mark_offline_every_five_seconds(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["hosts.mark_offline"]
    assert entry["task"] == "hosts.mark_offline" and entry["schedule"] == 5.0
