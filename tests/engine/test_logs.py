import re

from workers.engine.logs import MAX_LINE, LogWriter, read_records, read_text

STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$")


def test_lines_split_across_chunks_are_joined(tmp_path):
    path = tmp_path / "log"
    writer = LogWriter(path)
    writer.write("stdout", b"hel")
    writer.write("stdout", b"lo\nwor")
    writer.write("stderr", b"oops\n")
    writer.write("stdout", b"ld\n")
    writer.close()
    records = read_records(path)
    assert [(r.stream, r.content) for r in records] == [
        ("stdout", "hello"), ("stderr", "oops"), ("stdout", "world")]
    assert all(STAMP.match(r.time) for r in records)
    assert read_text(path) == "hello\noops\nworld\n"


def test_unterminated_and_overlong_lines_are_partial_records(tmp_path):
    path = tmp_path / "log"
    writer = LogWriter(path)
    writer.write("stdout", b"x" * (MAX_LINE + 10) + b"\n")
    writer.write("stdout", b"no newline")
    writer.close()
    records = read_records(path)
    assert [r.partial for r in records] == [True, False, True]
    assert read_text(path) == "x" * (MAX_LINE + 10) + "\nno newline"


def test_tail_and_timestamps(tmp_path):
    path = tmp_path / "log"
    writer = LogWriter(path)
    writer.write("stdout", b"".join(b"%d\n" % i for i in range(100)))
    writer.close()
    assert read_text(path, tail=2) == "98\n99\n"
    stamped = read_text(path, tail=1, timestamps=True)
    stamp, text = stamped.split(" ", 1)
    assert STAMP.match(stamp) and text == "99\n"


def test_spaces_inside_content_survive(tmp_path):
    path = tmp_path / "log"
    writer = LogWriter(path)
    writer.write("stdout", b"  a  b \n\n")
    writer.close()
    assert read_text(path) == "  a  b \n\n"
