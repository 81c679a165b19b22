"""The container list in pages, in a real browser against a live Berth: a container made
now shows up live on the first page, and a later page leaves it out."""

import secrets

import pytest

from apps.dashboard.container_views import PAGE_SIZE
from tests.browser.conftest import log_in

pytestmark = [pytest.mark.stack, pytest.mark.usefixtures("needs_root")]


def test_container_list_pages_keep_live_rows_on_their_own_page(
    stack, chromium, owner_page, owner_login
):
    _, api = stack
    tag = secrets.token_hex(3)
    made: list[str] = []

    def create(name: str) -> str:
        status, body = api.json("POST", "/api/containers/", {
            "image": "busybox", "name": name, "command": ["true"], "team": "default",
            "start": False})
        assert status == 201, body
        made.append(body["id"])
        return body["id"]

    older = log_in(chromium, stack[0].url, owner_login)
    try:
        for n in range(PAGE_SIZE + 1):  # more than a page, whatever else the stack holds
            create(f"page-{tag}-{n:02d}")
        first = owner_page
        first.goto("/containers/")
        older.goto("/containers/?page=2")
        for page in (first, older):
            page.wait_for_selector("#live.on")
        assert first.locator("#container-rows tr").count() == PAGE_SIZE
        older.click("nav.pager a[rel=prev]")  # the pager leads back and forth
        older.wait_for_url("**/containers/?page=1")
        older.click("nav.pager a[rel=next]")
        older.wait_for_url("**/containers/?page=2")
        older.wait_for_selector("#live.on")

        fresh: list[str] = []
        with older.expect_response(lambda r: bool(fresh) and f"/{fresh[0]}/row/" in r.url) as seen:
            fresh.append(create(f"page-{tag}-new"))
        assert seen.value.status == 204  # newer than this page: it belongs on the first
        first.wait_for_selector(f"#row-{fresh[0]}")
        assert first.locator("#container-rows tr").first.get_attribute("id") == f"row-{fresh[0]}"
        assert older.locator(f"#row-{fresh[0]}").count() == 0
    finally:
        older.context.close()
        for container_id in made:
            api.call("DELETE", f"/api/containers/{container_id}/?force=1")
