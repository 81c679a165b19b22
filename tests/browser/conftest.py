"""Browser tests: Debian's chromium, driven by Playwright, against the live ``stack``.

Users are made in the stack's own database with ``manage.py shell`` (the test
process's database is not the one the stack serves).
"""

import os
import secrets
from pathlib import Path

import pytest

from berth import ctl

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
MAKE_USER = """
from django.contrib.auth import get_user_model
from apps.teams.models import Team
from apps.teams.services import add_member
user, _ = get_user_model().objects.get_or_create(username={username!r})
user.set_password({password!r})
user.save()
add_member(Team.objects.get(slug="default"), user, {role!r})
"""


# Per package, not per session: Playwright's sync API keeps an asyncio loop marked
# running in the main thread while it lives, and later tests (pyroute2) need their own.
@pytest.fixture(scope="package")
def chromium():
    if not Path(CHROMIUM).exists():
        pytest.skip("needs Debian's chromium (scripts/system-deps.sh test)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield browser
        browser.close()


def make_stack_user(layout, role: str) -> tuple[str, str]:
    """A member of the stack's ``default`` team with ``role``; returns (username, password)."""
    username = f"{role}-{secrets.token_hex(3)}"
    password = secrets.token_urlsafe(12)
    code = MAKE_USER.format(username=username, password=password, role=role)
    ctl.manage(layout, "shell", "-c", code)
    return username, password


@pytest.fixture(scope="session")
def owner_login(stack):
    return make_stack_user(stack[0], "owner")


@pytest.fixture(scope="session")
def viewer_login(stack):
    return make_stack_user(stack[0], "viewer")


def log_in(browser, base_url: str, login: tuple[str, str], **context_options):
    """A new browser context (own cookies) with ``login`` logged in; returns its page."""
    context = browser.new_context(base_url=base_url, **context_options)
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.goto("/login/")
    page.fill("#id_username", login[0])
    page.fill("#id_password", login[1])
    page.click("button[type=submit]")
    page.wait_for_url(f"{base_url}/")
    return page


@pytest.fixture
def owner_page(chromium, stack, owner_login):
    page = log_in(chromium, stack[0].url, owner_login)
    yield page
    page.context.close()


@pytest.fixture
def viewer_page(chromium, stack, viewer_login):
    page = log_in(chromium, stack[0].url, viewer_login)
    yield page
    page.context.close()


def screenshot(page, name: str) -> None:
    """Save ``docs/screenshots/<name>.png`` when BERTH_SCREENSHOTS is set (the README's)."""
    if os.environ.get("BERTH_SCREENSHOTS"):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))
