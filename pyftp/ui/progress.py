"""Progress displays in four modes, picked by the caller: a rich bar (the shell), a tqdm
bar on stderr (one-shot at a terminal), short periodic plain lines (one-shot in a CI
log, where a redrawn bar would be noise), or nothing.

Each mode offers the same two context managers, :meth:`Reporter.transfer` (one file;
yields the ``on_progress(done, total)`` callback :class:`pyftp.Client` wants) and
:meth:`Reporter.job` (an overall bar around several files), and
:meth:`Reporter.job_update` to move the overall bar. :func:`job_display` builds on them
to turn the two callbacks of a :mod:`pyftp.sync` job (``on_progress`` for the file
moving now, ``on_job`` for the whole job) into a per-file bar plus the overall one.

Import rule: rich, tqdm and :mod:`pyftp.ui.text`; rich and tqdm only inside the modes
that draw with them, so the plain modes load neither.
"""
from __future__ import annotations

import time
from contextlib import ExitStack, contextmanager
from collections.abc import Callable

from ..hints import TYPE_CHECKING, LEAN, Protocol

if TYPE_CHECKING or not LEAN:  # names for annotations; see pyftp.hints
    from typing import Any, IO, Iterator

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, Task, TaskID

    from ..sync import JobProgress

from ..records import dataclass
from .text import honest_rate, human_duration, human_size, safe_name

#: the values ``make_reporter`` accepts
PROGRESS_MODES = ("rich", "tqdm", "lines", "off")

ProgressCallback = Callable[[int, int], object]


class _Bar(Protocol):
    """What is used of a tqdm bar (tqdm ships no type hints: its Any stops here)."""

    total: int | None
    n: int

    def update(self, n: int) -> object: ...

    def set_description_str(self, desc: str, refresh: bool = True) -> None: ...

    def refresh(self) -> None: ...

    def close(self) -> None: ...


def _noop(done: int, total: int) -> None:
    return None


class Reporter:
    """Progress display that shows nothing (``--quiet``, ``--no-progress``).

    Subclasses draw something; all share this interface, so callers never branch on
    the mode.
    """

    @contextmanager
    def transfer(self, label: str, total: int | None = None) -> Iterator[ProgressCallback]:
        """Show one transfer while the block runs; yields ``on_progress(done, total)``.

        ``label`` is shown as given (make it safe first); ``total`` may be None when
        the size is not known yet; the callback's ``total`` then fills it in.
        """
        yield _noop

    @contextmanager
    def job(self, label: str, files: int, total: int | None) -> Iterator[None]:
        """An overall display around several :meth:`transfer` blocks (mget, mput)."""
        yield

    def job_update(self, files_done: int, files: int, done: int, total: int | None) -> None:
        """Set the overall display of the running :meth:`job` to these absolute figures.

        A sync job learns its size while it runs (a folder inside an ``mget -r`` adds
        its files when it is reached) and finishes files that never moved a byte
        (skipped, failed), so it sets the figures instead of letting the per-file bars
        add up. ``done`` counts the bytes of finished files; the running file's bar
        adds its own bytes on top.
        """

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Lift the bars off the screen while the caller prints a line.

        Results go to stdout and bars to stderr; on a terminal both land on the same
        screen, and a line written under a live bar would be cut in two.
        """
        yield


def _follow_rewrap(progress: Progress) -> None:
    """Keep a shrinking window from leaving pieces of old bars behind.

    A terminal that gets narrower rewraps what it shows, so the last bar drawn now
    takes more rows than rich remembers; rich moves the cursor up by what it remembers
    and the rest stays on screen. Before each redraw (and before the bars are erased),
    the remembered height is made what the rewrapped bars take. The bar lives in rich's
    live render; without it (another rich) this does nothing.
    """
    render = getattr(getattr(progress, "live", None), "_live_render", None)
    if render is None or not hasattr(render, "_shape"):
        return
    console = progress.console

    def fit() -> None:
        shape = render._shape
        if shape is not None:
            width, height = shape
            now = console.width
            if 0 < now < width:
                render._shape = (now, height * -(-width // now))  # rows each line takes now

    for name in ("position_cursor", "restore_cursor"):
        def redraw(original: Callable[[], Any] = getattr(render, name)) -> Any:
            fit()
            return original()
        setattr(render, name, redraw)


class RichReporter(Reporter):
    """Live rich bars on a console: name, bytes done / total, speed, ETA.

    Bars are transient: once a transfer ends the bar disappears and the caller prints
    a one-line summary, so a finished session reads like a log, not a pile of bars.
    """

    def __init__(self, console: Console, *, transient: bool = True,
                 max_rate: float | None = None) -> None:
        self.console = console
        self.max_rate = max_rate
        self.transient = transient
        self._progress: Progress | None = None
        self._overall: TaskID | None = None  # the job bar
        self._job_done = 0  # bytes of files already finished within the job
        self._job_files = (0, 0)  # (finished, planned)
        self._job_label = ""

    def _make(self) -> Progress:
        from rich.progress import (BarColumn, DownloadColumn, Progress, ProgressColumn,
                                   TextColumn, TimeRemainingColumn)
        from rich.text import Text

        max_rate = self.max_rate

        class SpeedColumn(ProgressColumn):
            """Speed in the same binary units as the sizes beside it (MiB/s)."""

            def render(self, task: Task) -> Text:
                speed = honest_rate(task.finished_speed or task.speed, max_rate)
                return Text("?" if speed is None else f"{human_size(speed)}/s",
                            style="progress.data.speed")
        return Progress(
            TextColumn("{task.fields[label]}", markup=False),
            BarColumn(bar_width=40),
            DownloadColumn(binary_units=True),
            SpeedColumn(),
            TimeRemainingColumn(),
            console=self.console, transient=self.transient, expand=False,
            refresh_per_second=8)

    @contextmanager
    def _session(self) -> Iterator[Progress]:
        if self._progress is not None:
            yield self._progress
            return
        progress = self._make()
        _follow_rewrap(progress)
        self._progress = progress
        progress.start()
        try:
            yield progress
        finally:
            progress.stop()
            self._progress = None

    @contextmanager
    def paused(self) -> Iterator[None]:
        progress = self._progress
        if progress is None:
            yield
            return
        progress.stop()  # transient: the bars vanish, the line goes above them
        try:
            yield
        finally:
            progress.start()

    @contextmanager
    def job(self, label: str, files: int, total: int | None) -> Iterator[None]:
        with self._session() as progress:
            self._job_label, self._job_done, self._job_files = label, 0, (0, files)
            overall = self._overall = progress.add_task("", total=total,
                                                        label=self._overall_label())
            try:
                yield
            finally:
                progress.remove_task(overall)
                self._overall = None

    def _overall_label(self) -> str:
        done, planned = self._job_files
        return f"{self._job_label} ({done}/{planned} files)"

    def job_update(self, files_done: int, files: int, done: int, total: int | None) -> None:
        if self._progress is None or self._overall is None:
            return
        self._job_done, self._job_files = done, (files_done, files)
        self._progress.update(self._overall, completed=done, total=total,
                              label=self._overall_label())

    @contextmanager
    def transfer(self, label: str, total: int | None = None) -> Iterator[ProgressCallback]:
        with self._session() as progress:
            task = progress.add_task("", total=total, label=label)
            started = False
            last = 0

            def on_progress(done: int, total_: int) -> None:
                nonlocal started, last
                if not started:
                    # reset: bytes kept from an earlier attempt must not count as speed
                    progress.reset(task, total=total_, completed=done, label=label)
                    started = True
                else:
                    progress.update(task, completed=done, total=total_)
                last = done
                if self._overall is not None:
                    progress.update(self._overall, completed=self._job_done + done)
            try:
                yield on_progress
            finally:
                if self._overall is not None:
                    # a job shares one display: each file's bar makes room for the next
                    progress.remove_task(task)
                    self._job_done += last
                    done, planned = self._job_files
                    self._job_files = (done + 1, planned)
                    progress.update(self._overall, completed=self._job_done,
                                    label=self._overall_label())


class TqdmReporter(Reporter):
    """tqdm bars on a stream (stderr at a terminal, in one-shot mode)."""

    def __init__(self, stream: IO[str], *, max_rate: float | None = None) -> None:
        self.stream = stream
        self.max_rate = max_rate
        self._overall: _Bar | None = None
        self._job_label = ""

    def _bar(self, label: str, total: int | None, initial: int, position: int,
             leave: bool) -> _Bar:
        from tqdm import tqdm
        max_rate = self.max_rate

        class Bar(tqdm):  # type: ignore[misc]  # tqdm is untyped
            # no monitor thread: it outlives the bar and fights Ctrl-C; the bar is
            # redrawn on every update anyway
            monitor_interval = 0

            @property
            def format_dict(self) -> dict[str, Any]:
                # tqdm formats a rate in decimal units whatever unit_divisor says: the
                # sizes and the speed are written here, in the shell's binary units
                d: dict[str, Any] = super().format_dict
                rate = d.get("rate")
                if rate is None and d.get("elapsed"):
                    rate = (d["n"] - (d.get("initial") or 0)) / d["elapsed"]
                d["rate"] = rate = honest_rate(rate, max_rate)
                d["sizes"] = f"{human_size(d['n'])}/{human_size(d['total'])}"
                d["speed"] = "?" if rate is None else f"{human_size(rate)}/s"
                return d
        bar: _Bar = Bar(total=total, initial=initial, desc=label, unit="B", unit_scale=True,
                   unit_divisor=1024, file=self.stream, leave=leave, position=position,
                   dynamic_ncols=True, mininterval=0.2,
                   bar_format="{l_bar}{bar}| {sizes} [{elapsed}<{remaining}, {speed}]")
        return bar

    @contextmanager
    def paused(self) -> Iterator[None]:
        if self._overall is None:
            yield
            return
        from tqdm import tqdm
        with tqdm.external_write_mode(file=self.stream):
            yield

    @contextmanager
    def job(self, label: str, files: int, total: int | None) -> Iterator[None]:
        self._job_label = label
        overall = self._overall = self._bar(f"{label} ({files} files)", total, 0, 0, False)
        try:
            yield
        finally:
            overall.close()
            self._overall = None

    def job_update(self, files_done: int, files: int, done: int, total: int | None) -> None:
        bar = self._overall
        if bar is None:
            return
        bar.total = total
        bar.n = done
        bar.set_description_str(f"{self._job_label} ({files_done}/{files} files)",
                                refresh=False)
        bar.refresh()

    @contextmanager
    def transfer(self, label: str, total: int | None = None) -> Iterator[ProgressCallback]:
        bar: _Bar | None = None
        last = 0
        position = 1 if self._overall is not None else 0

        def on_progress(done: int, total_: int) -> None:
            nonlocal bar, last
            if bar is None:
                # created on the first report, so a resumed start is not counted as speed
                bar = self._bar(label, total_, done, position, position == 0)
            else:
                bar.update(done - last)
            if self._overall is not None:
                self._overall.update(done - last)
            last = done
        try:
            yield on_progress
        finally:
            if bar is not None:
                bar.close()


class LinesReporter(Reporter):
    """Short plain lines every ``interval`` seconds, for logs that keep every byte.

    A transfer shorter than ``interval`` prints nothing: the caller's summary line
    says all there is to say.
    """

    def __init__(self, stream: IO[str], *, interval: float = 5.0,
                 clock: Callable[[], float] = time.monotonic,
                 max_rate: float | None = None) -> None:
        self.stream = stream
        self.max_rate = max_rate
        self.interval = interval
        self.clock = clock
        self._job: _JobLine | None = None
        self._job_print = 0.0  # when the last line was written during a job

    def _write(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()

    @contextmanager
    def job(self, label: str, files: int, total: int | None) -> Iterator[None]:
        self._job = _JobLine(label, 0, files, 0, total)
        self._job_print = self.clock()
        try:
            yield
        finally:
            self._job = None

    def job_update(self, files_done: int, files: int, done: int, total: int | None) -> None:
        if self._job is None:
            return
        job = self._job
        job.files_done, job.files, job.bytes_done, job.total = files_done, files, done, total
        # many small files never make a transfer line of their own: the job speaks
        # for them, at the same pace
        now = self.clock()
        if now - self._job_print >= self.interval:
            self._job_print = now
            line = f"{job.label}: {files_done}/{files} files, {human_size(done)}"
            if total:
                line += f" / {human_size(total)} ({100 * min(done, total) // total}%)"
            self._write(line)

    @contextmanager
    def transfer(self, label: str, total: int | None = None) -> Iterator[ProgressCallback]:
        start = self.clock()
        last_print = start
        first: int | None = None
        last = 0

        def on_progress(done: int, total_: int) -> None:
            nonlocal last_print, first, last
            last = done
            if first is None:
                first = done
            now = self.clock()
            if now - last_print < self.interval:
                return
            last_print = now
            rate = honest_rate((done - first) / (now - start) if now > start else 0.0,
                               self.max_rate)
            parts = [f"{label}: {human_size(done)}"]
            if total_ is not None and total_ > 0:
                parts[0] += f" / {human_size(total_)} ({100 * done // total_}%)"
            parts.append(f"{human_size(rate)}/s")
            if rate > 0 and total_ is not None and total_ > done:
                parts.append(f"ETA {human_duration((total_ - done) / rate)}")
            if self._job is not None:
                job = self._job
                parts.append(f"{job.label} {job.files_done}/{job.files} files")
                self._job_print = now
            self._write(", ".join(parts))
        try:
            yield on_progress
        finally:
            if self._job is not None:
                self._job.files_done += 1
                self._job.bytes_done += last


@dataclass
class _JobLine:
    """The figures of the running job, as :class:`LinesReporter` writes them."""

    label: str
    files_done: int
    files: int
    bytes_done: int
    total: int | None


class JobDisplay:
    """The ``on_progress`` and ``on_job`` callbacks of a :mod:`pyftp.sync` job, drawn
    with a :class:`Reporter`: one bar for the file moving now and the overall bar.

    ``on_job`` arrives when a file starts (``files_done`` unchanged) and when one ends
    (``files_done`` one higher). The overall bar opens on the first call, so a job
    with nothing to move (an up-to-date mirror, a dry run) draws nothing. A job made
    of several parts (``mget -r`` with folders: each folder is a job of its own whose
    counts start again at zero) is shown as one, its totals growing as parts begin.
    Use it through :func:`job_display`, which closes the bars however the job ends.
    """

    def __init__(self, reporter: Reporter, label: str, verb: str, *,
                 per_file: bool = True) -> None:
        self.reporter = reporter
        self.per_file = per_file
        self.label = label
        self.verb = verb
        self._stack = ExitStack()
        self._file: ExitStack | None = None
        self._file_cb: ProgressCallback = _noop
        self._file_name: str | None = None
        self._opened = False
        self._last: JobProgress | None = None  # the previous report
        self._base = (0, 0)  # files and bytes of earlier, finished parts
        self._finished = 0  # bytes of the files finished in the current part

    def on_job(self, p: JobProgress) -> None:
        """``sync``'s ``on_job(JobProgress)``: a file started or ended."""
        last = self._last
        if last is not None and (p.files_total != last.files_total
                                 or p.bytes_total != last.bytes_total
                                 or p.files_done < last.files_done):
            # a new part of the job: the last one's counts become the base
            self._base = (self._base[0] + last.files_total, self._base[1] + last.bytes_total)
            self._finished = 0
            last = None
        self._last = p
        files0, bytes0 = self._base
        if not self._opened:
            self._opened = True
            self._stack.enter_context(self.reporter.job(self.label, files0 + p.files_total,
                                                        bytes0 + p.bytes_total))
        if p.files_done > (last.files_done if last is not None else 0):  # a file ended
            if self._file_name == p.current:
                self._close_file()
            # with no file running, sync's bytes_done is exactly the finished files'
            self._finished = p.bytes_done
        elif self.per_file:  # a file started: its own bar adds its bytes (and a resumed offset)
            self._close_file()
            self._file = ExitStack()
            self._file_name = p.current
            self._file_cb = self._file.enter_context(self.reporter.transfer(
                f"{self.verb} {safe_name(p.current)}", None))
        self.reporter.job_update(files0 + p.files_done, files0 + p.files_total,
                                 bytes0 + self._finished, bytes0 + p.bytes_total)

    def on_progress(self, done: int, total: int) -> None:
        """``sync``'s ``on_progress(done, total)``: bytes of the file moving now."""
        if self.per_file or self._last is None:
            self._file_cb(done, total)
            return
        p, (files0, bytes0) = self._last, self._base
        self.reporter.job_update(files0 + p.files_done, files0 + p.files_total,
                                 bytes0 + self._finished + done, bytes0 + p.bytes_total)

    def _close_file(self) -> None:
        if self._file is not None:
            f, self._file, self._file_cb, self._file_name = self._file, None, _noop, None
            f.close()

    def close(self) -> None:
        """Take every bar of this job off the display."""
        try:
            self._close_file()
        finally:
            self._stack.close()


@contextmanager
def job_display(reporter: Reporter, label: str, verb: str, *,
                per_file: bool = True) -> Iterator[JobDisplay]:
    """A :class:`JobDisplay` for one sync job; its bars are gone when the block ends.
    Without ``per_file`` only the overall bar is drawn, the running file's bytes
    moving it."""
    display = JobDisplay(reporter, label, verb, per_file=per_file)
    try:
        yield display
    finally:
        display.close()


def make_reporter(mode: str, *, console: Console | None = None,
                  stream: IO[str] | None = None, interval: float = 5.0,
                  clock: Callable[[], float] = time.monotonic,
                  max_rate: float | None = None) -> Reporter:
    """The progress display for ``mode`` (one of :data:`PROGRESS_MODES`).

    ``rich`` draws on ``console``; ``tqdm`` and ``lines`` write to ``stream``
    (stderr in the CLI, so stdout carries only results). ``max_rate``: the bytes per
    second transfers are limited to, if any; no display shows a speed above it.
    """
    if mode == "off":
        return Reporter()
    if mode == "rich":
        if console is None:
            from rich.console import Console
            console = Console(stderr=True)
        return RichReporter(console, max_rate=max_rate)
    if stream is None:
        import sys
        stream = sys.stderr
    if mode == "tqdm":
        return TqdmReporter(stream, max_rate=max_rate)
    if mode == "lines":
        return LinesReporter(stream, interval=interval, clock=clock, max_rate=max_rate)
    raise ValueError(f"unknown progress mode {mode!r}; use one of {', '.join(PROGRESS_MODES)}")
