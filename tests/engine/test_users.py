"""User and group ids a container may run as: 0..2^31-1, as runc allows.

setresuid(-1) leaves the uid unchanged, so 4294967295 must never reach it: the
container would stay root with every capability it was given.
"""

import pytest

from tests.engine.test_isolation import image_with, run

pytestmark = pytest.mark.usefixtures("needs_root")

PASSWD = (b"root:x:0:0:root:/root:/bin/sh\n"
          b"huge:x:4294967295:0:huge:/:/bin/sh\n"
          b"badgid:x:1000:2147483648:badgid:/:/bin/sh\n"
          b"member:x:1001:1001:member:/:/bin/sh\n")
GROUP = b"root:x:0:\nwide:x:-5:member\n"


@pytest.mark.parametrize("user", ["4294967295", "2147483648", "0:4294967295", "1000:99999999999"])
def test_numeric_ids_out_of_range_are_refused(runtime, user):
    state, output = run(runtime, "id", user=user)
    assert "out of range" in state["error"]
    assert "uid=" not in output


def test_largest_id_is_allowed(runtime):
    _, output = run(runtime, "id", "-u", user="2147483647:2147483647")
    assert output.strip() == "2147483647"


@pytest.mark.parametrize(("user", "field"), [("huge", "uid"), ("badgid", "gid"),
                                             ("member", "group wide")])
def test_ids_out_of_range_in_the_images_files_are_refused(runtime, store, user, field):
    image = image_with(store, {"etc/passwd": PASSWD, "etc/group": GROUP}, "users:1")
    state, output = run(runtime, "id", image=image, user=user)
    assert "out of range" in state["error"] and field in state["error"]
    assert "uid=" not in output
