"""The `userns` create option: anyone may ask (it only lowers privilege); it reaches
the agent's spec; what the engine cannot combine with it is a 400."""

import pytest

from apps.containers import options
from tests.fixtures import queued_messages

pytestmark = pytest.mark.django_db


def post(client, body):
    return client.post("/api/containers/", body, format="json")


def test_userns_reaches_the_agent_spec(owner, host, broker, client_for,
                                       django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client_for(owner), {"image": "busybox", "userns": True})
    assert response.status_code == 201, response.content
    assert response.json()["options"]["userns"] is True
    [message] = queued_messages(broker, host.name)
    assert message["args"][1]["userns"] is True


def test_no_userns_by_default():
    parsed = options.parse_create_options({"image": "busybox"}, site_admin=False)
    assert "userns" not in options.agent_spec_fields(parsed.options, "no")
    assert options.effective(parsed.options)["userns"] is False


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"userns": "yes"}, "true or false"),
        ({"userns": True, "network": "host"}, "host's network"),
        ({"userns": True, "mounts": ["data:/data"]}, "volumes are not supported"),
    ],
)
def test_bad_userns_combinations_are_400(owner, host, client_for, extra, message):
    response = post(client_for(owner), {"image": "busybox", **extra})
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert message in error["message"] and "userns" in error["fields"], error
