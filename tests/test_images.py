"""Image reference normalisation and the read-only images API."""

import pytest

from apps.images.models import Image
from apps.images.reference import normalize_reference
from tests.fixtures import BUSYBOX, make_host

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("busybox", BUSYBOX),
        ("busybox:1.36", "docker.io/library/busybox:1.36"),
        ("library/busybox", BUSYBOX),
        ("docker.io/busybox", BUSYBOX),
        ("index.docker.io/library/busybox", BUSYBOX),
        ("someone/app", "docker.io/someone/app:latest"),
        ("ghcr.io/org/team/app:v1.2", "ghcr.io/org/team/app:v1.2"),
        ("localhost:5000/app", "localhost:5000/app:latest"),
        ("registry.local:5000/a/b:c", "registry.local:5000/a/b:c"),
        ("localhost/app", "localhost/app:latest"),
        (f"busybox@{DIGEST}", f"docker.io/library/busybox@{DIGEST}"),
        (f"busybox:1@sha256:{'AB' * 32}", f"docker.io/library/busybox:1@{DIGEST}"),
        ("  busybox  ", BUSYBOX),
        ("my_app__x.y-z", "docker.io/library/my_app__x.y-z:latest"),
    ],
)
def test_normalize_reference(given, expected):
    assert normalize_reference(given) == expected


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        ("", "empty"),
        ("BusyBox", "must be lowercase"),
        ("busybox:", "invalid tag"),
        ("busybox:-x", "invalid tag"),
        ("a//b", "path component ''"),
        ("-app", "path component '-app'"),
        ("app_", "path component 'app_'"),
        ("busybox@sha256:1234", "invalid digest"),
        ("busybox@sha256:" + "a" * 40, "64 hex digits"),
        ("bad host!/app", "path component"),
        ("x" * 300, "longer than 255"),
        (None, "empty"),
    ],
)
def test_malformed_references_raise_value_error(given, reason):
    with pytest.raises(ValueError, match=reason):
        normalize_reference(given)


@pytest.mark.django_db
def test_images_api_shows_system_and_own_team_images_only(owner, outsider, other_team, client_for):
    host = make_host()
    private = Image.objects.create(host=host, team=other_team, reference="docker.io/beta/app:1")
    mine = {row["reference"] for row in client_for(owner).get("/api/images/").json()["results"]}
    assert mine == {BUSYBOX}
    assert client_for(owner).get(f"/api/images/{private.pk}/").status_code == 404
    theirs = {
        row["reference"] for row in client_for(outsider).get("/api/images/").json()["results"]
    }
    assert theirs == {BUSYBOX, "docker.io/beta/app:1"}
    detail = client_for(owner).get(f"/api/images/{host.images.get(reference=BUSYBOX).pk}/").json()
    assert detail["host"] == host.name and detail["team"] is None


@pytest.mark.django_db
def test_images_are_not_created_by_post(admin, client_for):
    make_host()
    client = client_for(admin)
    assert client.post("/api/images/", {"reference": "x"}, format="json").status_code == 405
    assert client.put("/api/images/1/", {"reference": "x"}, format="json").status_code == 405


@pytest.mark.django_db
def test_images_api_filters_by_host(owner, client_for):
    first, _ = make_host(), make_host()
    rows = client_for(owner).get(f"/api/images/?host={first.name}").json()["results"]
    assert [row["host"] for row in rows] == [first.name]


@pytest.mark.django_db
def test_a_team_image_cannot_be_run_by_another_team(outsider, owner, other_team, client_for):
    host = make_host(images=())
    Image.objects.create(host=host, team=other_team, reference="docker.io/beta/app:1")
    response = client_for(owner).post("/api/containers/", {"image": "beta/app:1"}, format="json")
    assert response.status_code == 400
    assert "unknown image docker.io/beta/app:1" in response.json()["error"]["message"]
    ok = client_for(outsider).post("/api/containers/", {"image": "beta/app:1"}, format="json")
    assert ok.status_code == 201, ok.content
