"""The OpenAPI schema against the API: schemathesis finds no server errors, and list
endpoints make the same number of queries whatever the number of rows."""

import os

import pytest
import schemathesis
from django.db import connection
from django.test.utils import CaptureQueriesContext
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings

from berth.wsgi import application
from tests.fixtures import make_container, make_host

EXAMPLES = int(os.environ.get("BERTH_SCHEMATHESIS_EXAMPLES", "4"))
# Endpoints that stream until the client leaves or long-poll for minutes: a generated
# request would hang the test, not fail it. They have their own tests.
STREAMING = (
    "/api/events/",
    "/api/containers/{id}/logs/",
    "/api/containers/{id}/logs/events/",
    "/api/containers/{id}/stats/",
    "/api/containers/{id}/wait/",
    "/api/containers/{id}/attach/",
    "/api/execs/{id}/output/",
    "/api/transfers/{token}/",
)
# Answers that are the API working as designed when the agent is away (the test host is
# offline): 502/503 with the one error body and these codes. Anything else 5xx fails.
BINARY_BODIES = (
    "application/x-tar",
    "application/tar",
    "application/gzip",
    "application/x-gzip",
    "application/x-bzip2",
    "application/x-xz",
    "application/zstd",
    "application/octet-stream",
)
AGENT_UNAVAILABLE = {"host_unavailable", "agent_error", "unavailable"}


@schemathesis.serializer(*BINARY_BODIES)
def raw_bytes(ctx, value) -> bytes:
    """Archives and compressed bodies: whatever bytes were generated, sent as they are."""
    return value if isinstance(value, bytes) else str(value).encode()


def load_schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


schema = schemathesis.openapi.from_dict(load_schema()).exclude(path=list(STREAMING))


@pytest.fixture
def admin_key(admin, team, owner):
    """An admin's token, with something of each kind to find (an offline host: no RPC waits)."""
    from apps.accounts.services import create_token

    host = make_host("test-schema", online=False)
    make_container(team, host, name="web")
    return create_token(admin)[1]


@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_server_errors(case, admin_key):
    response = case.call(app=application, headers={"Authorization": f"Token {admin_key}"})
    if response.status_code >= 500:
        try:
            code = response.json()["error"]["code"]
        except (ValueError, KeyError, TypeError):
            code = None
        assert response.status_code in (502, 503) and code in AGENT_UNAVAILABLE, (
            f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:500]}"
        )


# ---- query counts -------------------------------------------------------------------------

LISTS = [
    "/api/containers/",
    "/api/containers/?state=running&ordering=name",
    "/api/images/",
    "/api/hosts/",
    "/api/teams/",
    "/api/audit/",
    "/api/tokens/",
    "/api/join-tokens/",
    "/api/operations/",
]


def fill(team, admin, rows: int) -> None:
    """``rows`` more of everything a list shows."""
    from apps.accounts.services import create_token
    from apps.audit import record
    from apps.hosts.join import create_join_token
    from apps.operations.models import Operation

    for _ in range(rows):
        host = make_host()
        make_container(team, host, name=f"c{host.name}")
        record("test.event", team)
        create_token(admin)
        create_join_token(admin)
        Operation.objects.create(kind="pull", team=team, host=host, target="busybox")


def queries(client, path: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path)
    assert response.status_code == 200, (path, response.content[:300])
    return len(captured)


@pytest.mark.django_db
@pytest.mark.parametrize("path", LISTS)
def test_list_queries_do_not_grow_with_rows(path, admin, team, client_for):
    client = client_for(admin)
    fill(team, admin, 2)
    few = queries(client, path)
    fill(team, admin, 8)
    assert queries(client, path) <= few, f"{path}: more rows, more queries"
