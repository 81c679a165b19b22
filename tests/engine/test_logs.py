"""Log records as berth-supervisor writes them, read back through the engine."""

import re

import pytest

from workers.engine.bootstrap import BUSYBOX_REFERENCE
from workers.engine.logs import MAX_LINE, read_records

pytestmark = pytest.mark.usefixtures("needs_root")
STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$")


def run(runtime, script: str):
    runtime.create("c1", {"image": BUSYBOX_REFERENCE, "args": ["sh", "-c", script]})
    runtime.start("c1")
    assert runtime.wait("c1", 20)
    return read_records(runtime.existing("c1") / "container.log")


def test_lines_split_across_writes_are_joined(runtime):
    records = run(runtime, "printf hel; sleep 0.1; printf 'lo\\nwor'; echo oops >&2; "
                           "sleep 0.1; echo ld")
    assert [(r.stream, r.content, r.partial) for r in records] == [
        ("stdout", "hello", False), ("stderr", "oops", False), ("stdout", "world", False)]
    assert all(STAMP.match(r.time) for r in records)
    assert runtime.logs("c1") == "hello\noops\nworld\n"


def test_overlong_and_unterminated_lines_are_partial_records(runtime):
    records = run(runtime, f"head -c {MAX_LINE + 10} /dev/zero | tr '\\0' x; echo; "
                           "printf 'no newline'")
    assert [r.partial for r in records] == [True, False, True]
    assert runtime.logs("c1") == "x" * (MAX_LINE + 10) + "\nno newline"


def test_tail_and_timestamps(runtime):
    run(runtime, "seq 0 99")
    assert runtime.logs("c1", tail=2) == "98\n99\n"
    stamp, text = runtime.logs("c1", tail=1, timestamps=True).split(" ", 1)
    assert STAMP.match(stamp) and text == "99\n"


def test_spaces_and_empty_lines_survive(runtime):
    run(runtime, "printf '  a  b \\n\\n'")
    assert runtime.logs("c1") == "  a  b \n\n"
