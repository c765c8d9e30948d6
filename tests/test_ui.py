"""Rendering: sizes, safe names, error lines, listings and the four progress modes."""
from __future__ import annotations

import re
from io import StringIO

import pytest
from rich.console import Console

from pyftp.client import Entry
from pyftp.errors import (AuthRequiredError, LocalError, NotFoundError, PyftpError,
                          TransportError)
from pyftp.ui.text import honest_rate
from pyftp.ui import (LinesReporter, Reporter, RichReporter, TqdmReporter, error_text,
                      human_size, listing, make_reporter, print_error, safe_name,
                      transfer_summary)


def render(renderable, *, width: int = 120, terminal: bool = False) -> str:
    buf = StringIO()
    Console(file=buf, width=width, force_terminal=terminal, color_system=None).print(renderable)
    return buf.getvalue()


@pytest.mark.parametrize("n, text", [
    (0, "0 B"), (1, "1 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (1536, "1.5 KiB"),
    (20 * 2**20, "20.0 MiB"), (3 * 2**40, "3.0 TiB"), (None, "?"),
])
def test_human_size(n, text):
    assert human_size(n) == text


def test_safe_name_escapes_what_a_terminal_would_obey_and_keeps_the_rest():
    assert safe_name("café menu.txt") == "café menu.txt"
    not_utf8 = b"bad\xff.txt".decode("utf-8", "surrogateescape")
    assert safe_name(not_utf8) == "bad\\xff.txt"
    assert safe_name("\x1b[31mred") == "\\x1b[31mred"
    assert safe_name("a\ud800b") == "a\\ud800b"
    assert safe_name("tab\there") == "tab\\x09here"
    # the result can always be written to a strict UTF-8 stream
    safe_name(not_utf8).encode("utf-8")


def test_error_text_is_one_line_with_its_reason():
    assert error_text(NotFoundError("not found: /docs/x.txt")) == "not found: /docs/x.txt"
    assert error_text(AuthRequiredError("send hello first")) == "login required: send hello first"
    assert error_text(LocalError("cannot read a.txt: No such file")) == "cannot read a.txt: No such file"
    assert error_text(TransportError("connection lost:\n reset")) == "connection lost: reset"
    assert error_text(KeyboardInterrupt()) == "cancelled"
    assert "please report" in error_text(ZeroDivisionError("x"))
    weird = b"\xff".decode("utf-8", "surrogateescape")
    assert error_text(NotFoundError(f"not found: /{weird}")) == "not found: /\\xff"
    assert isinstance(NotFoundError("x"), PyftpError)


def test_print_error_never_interprets_markup():
    buf = StringIO()
    print_error(Console(file=buf, width=80), "not found: /[bold]x[/bold]", prefix="pyftp: ")
    assert buf.getvalue() == "pyftp: not found: /[bold]x[/bold]\n"


ENTRIES = [Entry("docs", "dir", 0, 1_700_000_000.0),
           Entry("big.bin", "file", 5 * 2**20, 1_700_000_000.0),
           Entry("empty", "file", 0, 1_700_000_000.0),
           Entry(b"n\xffame".decode("utf-8", "surrogateescape"), "file", 10, 0.0)]


def test_long_listing_has_names_sizes_times_and_a_summary():
    out = render(listing(ENTRIES, long=True, plain=True))
    assert "docs/" in out and "5.0 MiB" in out and "0 B" in out
    assert "2023-11-1" in out  # 1_700_000_000 is 14/15 Nov 2023 depending on the zone
    assert "n\\xffame" in out
    assert "1 folder, 3 files, 5.0 MiB" in out


def test_short_listing_is_one_name_per_line_when_plain():
    out = render(listing(ENTRIES, plain=True))
    assert out.splitlines() == ["docs/", "big.bin", "empty", "n\\xffame"]


def test_folders_are_coloured_in_a_terminal():
    buf = StringIO()
    Console(file=buf, width=80, force_terminal=True, color_system="standard").print(
        listing(ENTRIES[:2]))
    assert "\x1b[" in buf.getvalue().split("docs/")[0][-12:]  # a colour code right before


def test_transfer_summary_mentions_resume_and_speed():
    line = transfer_summary("get", "/a.bin", "a.bin", 2 * 2**20, 2**20, 2**20, 0.5, "ab" * 32)
    text = line.plain
    assert text.startswith("get /a.bin -> a.bin  2.0 MiB")
    assert "2.0 MiB/s" in text and "resumed at 1.0 MiB" in text and "abababababab" in text


def test_transfer_summary_names_the_algorithm_it_was_verified_with():
    assert "SHA-256 abababababab" in transfer_summary("get", "/a", "a", 1, 1, 0, 1.0,
                                                       "ab" * 32).plain
    line = transfer_summary("put", "a", "/a", 1, 1, 0, 1.0, "cd" * 32, algorithm="blake3")
    assert "BLAKE3 cdcdcdcdcdcd" in line.plain and "SHA-256" not in line.plain


def test_off_reporter_draws_nothing_and_accepts_callbacks():
    r = make_reporter("off")
    assert type(r) is Reporter
    with r.job("mget", 2, 10):
        with r.transfer("get x", 10) as cb:
            cb(0, 10)
            cb(10, 10)


def _rich_console(buf):
    return Console(file=buf, width=120, force_terminal=True, color_system=None)


def test_rich_bar_renders_zero_byte_unknown_total_and_a_job():
    buf = StringIO()
    r = RichReporter(_rich_console(buf), transient=False)
    with r.transfer("get empty", 0) as cb:
        cb(0, 0)
    with r.transfer("get stream", None) as cb:
        cb(5000, None)  # type: ignore[arg-type]
    with r.job("mget", 2, 3 * 2**20):
        with r.transfer("get one", 2**20) as cb:
            cb(2**20, 2**20)
        with r.transfer("get two", 2 * 2**20) as cb:
            cb(2**20, 2 * 2**20)
    out = buf.getvalue()
    assert "get empty" in out and "0/0 bytes" in out
    assert "get stream" in out and "/?" in out
    assert "mget (" in out and "files)" in out


def test_rich_bar_shows_bytes_and_speed_in_binary_units():
    buf = StringIO()
    r = RichReporter(_rich_console(buf), transient=False)
    with r.transfer("get big.bin", 20 * 2**20) as cb:
        cb(0, 20 * 2**20)
        cb(5 * 2**20, 20 * 2**20)
    out = buf.getvalue()
    assert "get big.bin" in out and "5.0/20.0 MiB" in out


def test_tqdm_bar_goes_to_its_stream_with_name_and_units():
    stream = StringIO()
    r = TqdmReporter(stream)
    with r.job("mput", 1, 4096):
        with r.transfer("put a.bin", 4096) as cb:
            cb(0, 4096)
            cb(4096, 4096)
    with r.transfer("put empty", 0) as cb:
        cb(0, 0)
    out = stream.getvalue()
    assert "put a.bin" in out and "0 B/4.0 KiB" in out
    assert "put empty" in out and "mput (1 files)" in out
    assert "kB" not in out and "MB" not in out  # one unit system: binary


def test_no_bar_shows_a_speed_above_the_rate_limit():
    # a limiter lets a first burst through: measured over a moment, the speed is higher
    # than the limit; every display promises the limit at most
    clock = FakeClock()
    limit = 20 << 20
    stream = StringIO()
    r = TqdmReporter(stream, max_rate=limit)
    with r.transfer("put big", 100 << 20) as cb:
        cb(30 << 20, 100 << 20)  # 30 MiB at once: tqdm would measure far above 20 MiB/s
        cb(31 << 20, 100 << 20)
    speeds = re.findall(r"([0-9.]+) (KiB|MiB|GiB)/s", stream.getvalue())
    assert speeds and all(float(v) * {"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}[u]
                          <= limit for v, u in speeds)
    lines = StringIO()
    lr = LinesReporter(lines, interval=1.0, clock=clock, max_rate=limit)
    with lr.transfer("get big", 100 << 20) as cb:
        cb(0, 100 << 20)
        clock.now += 1.0
        cb(60 << 20, 100 << 20)  # 60 MiB in one second: shown as 20 MiB/s
    assert "20.0 MiB/s" in lines.getvalue()
    assert honest_rate(None, limit) is None and honest_rate(5.0, None) == 5.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_lines_reporter_prints_periodic_lines_and_nothing_for_short_transfers():
    stream, clock = StringIO(), FakeClock()
    r = LinesReporter(stream, interval=5.0, clock=clock)
    with r.transfer("get quick", 100) as cb:
        cb(0, 100)
        cb(100, 100)
    assert stream.getvalue() == ""
    with r.transfer("get big.bin", 20 * 2**20) as cb:
        cb(0, 20 * 2**20)
        for second in range(1, 11):
            clock.now += 1
            cb(second * 2**20, 20 * 2**20)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2  # at 5 s and 10 s
    assert lines[0] == "get big.bin: 5.0 MiB / 20.0 MiB (25%), 1.0 MiB/s, ETA 15 s"
    assert lines[1].startswith("get big.bin: 10.0 MiB / 20.0 MiB (50%)")


def test_lines_reporter_handles_unknown_total_and_names_the_job():
    stream, clock = StringIO(), FakeClock()
    r = LinesReporter(stream, interval=1.0, clock=clock)
    with r.job("mget", 3, None):
        with r.transfer("get a", None) as cb:
            cb(0, None)  # type: ignore[arg-type]
            clock.now += 2
            cb(2048, None)  # type: ignore[arg-type]
    assert stream.getvalue() == "get a: 2.0 KiB, 1.0 KiB/s, mget 0/3 files\n"


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="rich, tqdm, lines, off"):
        make_reporter("fancy")


def test_a_summary_never_claims_a_speed_above_the_limit():
    # 6 MiB in 1 s under a 4 MiB/s limit: the bucket's first burst, not the sustained rate
    line = transfer_summary("get", "/a", "a", 6 << 20, 6 << 20, 0, 1.0, "ab" * 32,
                            max_rate=4 << 20).plain
    assert "(4.0 MiB/s)" in line
    assert "(6.0 MiB/s)" in transfer_summary("get", "/a", "a", 6 << 20, 6 << 20, 0, 1.0,
                                             "ab" * 32).plain


def test_a_bar_in_a_window_that_shrank_is_erased_whole():
    """A terminal that narrows rewraps the bar onto more rows: erasing it must take
    them all, or pieces of it stay on screen (seen in tmux)."""
    def rows_erased_at_the_end(width_after: int) -> int:
        buf = StringIO()
        console = _rich_console(buf)
        r = RichReporter(console)  # transient: the bar is erased when it ends
        with r.transfer("put " + "m" * 40 + ".bin", 20 * 2**20) as cb:
            cb(5 * 2**20, 20 * 2**20)  # drawn at 120 columns: one row of ~90
            console.width = width_after
            mark = len(buf.getvalue())
        return buf.getvalue()[mark:].count("\x1b[1A")
    assert rows_erased_at_the_end(120) == 1  # one row, erased when the transfer ends
    # at 40 columns that row takes three: both extra rows go before the last drawing
    assert rows_erased_at_the_end(40) == 3
