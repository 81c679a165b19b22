"""Screenshots of the main pages for the README (docs/screenshots/), light, dark and phone.

Run with BERTH_SCREENSHOTS=1; otherwise skipped, so ordinary runs leave docs/ alone.
"""

import os
import secrets

import pytest

from tests.browser.conftest import screenshot as shoot
from tests.browser.test_dashboard_live import create_from_form, remove

pytestmark = [
    pytest.mark.stack,
    pytest.mark.usefixtures("needs_root"),
    pytest.mark.skipif(not os.environ.get("BERTH_SCREENSHOTS"), reason="BERTH_SCREENSHOTS unset"),
]
COLOURED = (
    "sh -c 'i=0; while true; do "
    "printf \"\\033[32mINFO\\033[0m request %s served in %sms\\n\" $i $((i % 17 + 3)); "
    "[ $((i % 5)) -eq 0 ] && printf \"\\033[33mWARN\\033[0m slow upstream %s\\n\" $i >&2; "
    "i=$((i+1)); sleep 0.3; done'"
)


def test_screenshots(stack, owner_page, chromium, owner_login):
    from tests.browser.conftest import log_in

    _, api = stack
    page = owner_page
    page.set_viewport_size({"width": 1280, "height": 800})
    suffix = secrets.token_hex(2)
    made = [create_from_form(page, f"web-{suffix}", COLOURED)]
    made.append(create_from_form(page, f"batch-{suffix}", "sh -c 'echo done; exit 3'"))
    made.append(create_from_form(page, f"cache-{suffix}", "sleep 3600"))
    try:
        page.goto("/")
        page.wait_for_selector("h1")
        shoot(page, "overview")
        page.goto("/containers/")
        page.wait_for_selector("#live.on")
        shoot(page, "containers")
        page.goto(f"/containers/{made[0]}/#logs")
        page.wait_for_selector("#logs .ln.err")
        page.check("#log-ts")
        shoot(page, "container-logs")
        page.click("[data-tab=stats]")
        page.wait_for_function(
            "Number(document.getElementById('container').dataset.statsSamples) >= 6")
        shoot(page, "container-stats")
        page.click("[data-tab=terminal]")
        page.click("#term-open")
        page.wait_for_selector("#term-live:has-text('connected')")
        page.locator("#terminal .xterm-helper-textarea").focus()
        page.keyboard.type("ls /; ps\n")
        page.wait_for_selector("#terminal .xterm-rows:has-text('PID')")
        shoot(page, "container-terminal")
        page.goto("/containers/new/")
        page.fill("#id_image", "busybox")
        page.fill("#id_memory", "1k")
        page.click("text=Create and run")
        page.wait_for_selector(".field.invalid")
        page.locator(".field.invalid").scroll_into_view_if_needed()
        shoot(page, "create-form")
        page.goto("/images/")
        shoot(page, "images")
        page.goto("/operations/")
        shoot(page, "operations")
        dark = log_in(chromium, stack[0].url, owner_login, color_scheme="dark",
                      viewport={"width": 1280, "height": 800})
        dark.goto(f"/containers/{made[0]}/#logs")
        dark.wait_for_selector("#logs .ln")
        shoot(dark, "container-logs-dark")
        dark.goto("/")
        shoot(dark, "overview-dark")
        dark.context.close()
        phone = log_in(chromium, stack[0].url, owner_login,
                       viewport={"width": 390, "height": 844}, device_scale_factor=2)
        phone.goto("/containers/")
        phone.wait_for_selector("#live.on")
        shoot(phone, "containers-phone")
        phone.context.close()
    finally:
        for container_id in made:
            remove(api, container_id)
