"""The container list in pages: newest first, filters kept across pages, a fixed number
of queries whatever the page holds, and live rows only for the page they belong on."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.containers.models import Container
from apps.dashboard.container_views import PAGE_SIZE
from apps.teams.choices import Role
from apps.teams.models import Membership
from tests.fixtures import BUSYBOX, make_host

pytestmark = pytest.mark.django_db


def browser(user):
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client


def fill(team, hosts, count: int, *, state="pending", start: int = 0) -> list[Container]:
    """``count`` containers one minute apart, c0000 the oldest, spread over ``hosts``."""
    base = timezone.now() - timedelta(days=1)
    rows = [
        Container(name=f"c{n:04d}", team=team, host=hosts[n % len(hosts)],
                  image=hosts[n % len(hosts)].images.get(), image_reference=BUSYBOX,
                  state=state, created_at=base + timedelta(minutes=n))
        for n in range(start, start + count)
    ]
    return Container.objects.bulk_create(rows)


def names(page: str) -> list[str]:
    return re.findall(r'aria-label="select (c\d{4})"', page)


def test_pages_hold_newest_first_and_links_keep_the_filters(owner, team, host):
    fill(team, [host], PAGE_SIZE * 2 + 7)
    client = browser(owner)
    first = client.get("/containers/?state=pending").content.decode()
    assert names(first) == [f"c{n:04d}" for n in range(PAGE_SIZE * 2 + 6, PAGE_SIZE + 6, -1)]
    assert f"1–{PAGE_SIZE} of {PAGE_SIZE * 2 + 7}" in first
    assert 'href="?state=pending&amp;page=2" rel="next"' in first and 'rel="prev"' not in first
    last = client.get("/containers/?state=pending&page=3").content.decode()
    assert names(last) == [f"c{n:04d}" for n in range(6, -1, -1)]
    assert 'href="?state=pending&amp;page=2" rel="prev"' in last and 'rel="next"' not in last
    # The bulk form comes back to the page it was sent from.
    assert 'name="next" value="/containers/?state=pending&amp;page=3"' in last
    # A page number past the end, or not a number, shows a page rather than an error.
    assert names(client.get("/containers/?page=99").content.decode()) == names(last)
    newest = f"c{PAGE_SIZE * 2 + 6:04d}"
    assert names(client.get("/containers/?page=x").content.decode())[0] == newest


def test_one_page_has_no_pager(owner, team, host):
    fill(team, [host], 3)
    page = browser(owner).get("/containers/").content.decode()
    assert len(names(page)) == 3 and 'class="pager"' not in page


def test_queries_do_not_grow_with_the_rows(owner, team, other_team, host):
    """No query per row: team, host and the actions offered come with the page."""
    Membership.objects.create(team=other_team, user=owner, role=Role.VIEWER)
    hosts = [host, make_host(), make_host()]
    fill(team, hosts, 2)
    client = browser(owner)

    def queries() -> int:
        with CaptureQueriesContext(connection) as seen:
            assert client.get("/containers/").status_code == 200
        return len(seen)

    few = queries()
    fill(other_team, hosts, PAGE_SIZE, start=10)
    assert queries() == few
    page = client.get("/containers/").content.decode()
    assert "Beta" in page and hosts[2].name in page
    # Viewer of Beta, owner of Alpha: only Alpha's rows can be selected for bulk actions.
    assert names(page) == []
    assert len(names(client.get("/containers/?page=2").content.decode())) == 2


def test_a_live_row_is_given_only_to_the_page_it_belongs_on(owner, team, host):
    rows = fill(team, [host], 3)
    client = browser(owner)
    middle = rows[1].created_at.isoformat()

    def row(container, **span):
        return client.get(f"/containers/{container.id}/row/", span)

    assert row(rows[0], newest=middle, oldest=middle).status_code == 204  # older: a later page
    assert row(rows[2], newest=middle).status_code == 204  # newer: an earlier page
    inside = row(rows[1], newest=middle, oldest=middle)
    assert inside.status_code == 200 and b"c0001" in inside.content
    assert row(rows[2]).status_code == 200  # no span: the first and only page
    refused = row(rows[1], newest="yesterday")
    assert refused.status_code == 400 and b"newest" in refused.content
    assert row(rows[1], oldest="2026-01-01T00:00:00").status_code == 400  # no offset
