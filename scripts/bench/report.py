"""Turn measured scenarios into the issue's targets, the Markdown table, the chart, and
the published section of docs/benchmarks.md.

Import rule: imports common; matplotlib inside ``chart`` only.
"""
from __future__ import annotations

import shutil
import statistics
from dataclasses import dataclass
from pathlib import Path

from .common import REPO, Results, Scenario, log

FTP_SUM = "FTP + sha256sum"


@dataclass(frozen=True)
class Row:
    """One line of the table: ``tool`` of scenario ``key`` against ``peer`` (or alone).
    ``need`` is the issue's target: a ratio to the peer (``at_most``: the ratio may not
    exceed it), or, without a peer, a bound on the value itself."""
    key: str
    tool: str
    peer: str | None = None
    need: float | None = None
    at_most: bool = False


ROWS = [
    Row("cli_get_big", "pyftp", "raw", 0.7), Row("cli_get_big", "pyftp", FTP_SUM, 1.5),
    Row("cli_get_big", "pyftp --digest sha256", FTP_SUM, 1.0),
    Row("cli_get_big", "pyftp", "pyftpdlib"),
    Row("cli_put_big", "pyftp", "raw", 0.7), Row("cli_put_big", "pyftp", FTP_SUM, 1.5),
    Row("cli_put_big", "pyftp --digest sha256", FTP_SUM, 1.0),
    Row("cli_put_big", "pyftp", "pyftpdlib"),
    Row("cli_files", "pyftp get -r", "pyftpdlib", 8), Row("cli_files", "pyftp -b gets", "pyftpdlib", 3),
    Row("cli_list_10", "pyftp -b ls", "ftplib nlst", 3),
    Row("cli_list_wide", "pyftp -b ls", "ftplib nlst", 1),
    Row("cli_procs", "pyftp", "ftplib", 1),
    Row("startup", "pyftp -c put", "ftplib one-shot put", 1.3, at_most=True),
    Row("startup", "pyftp --version", None, 100, at_most=True),
    Row("rss_transfer", "pyftp-client get", "ftplib-client get"),
    Row("rss_transfer", "pyftp-client put", "ftplib-client put"),
    Row("rss_transfer", "pyftp-client get", None, 40, at_most=True),
    Row("rss_transfer", "pyftp-client put", None, 40, at_most=True),
    Row("rss_transfer", "pyftp-server", None, 40, at_most=True),
    Row("rss_transfer", "pyftp-server", "pyftpdlib-server"),
    Row("rss_idle", "pyftp-server", None, 64, at_most=True),
    Row("rss_idle", "pyftp-server", "pyftpdlib-server"),
    # the Python API (no targets of their own in this issue)
    Row("get_big", "pyftp", "raw"), Row("get_big", "pyftp", "pyftpdlib"),
    Row("get_big_cold", "pyftp"),
    Row("put_big", "pyftp", "raw"), Row("put_big", "pyftp", "pyftpdlib"),
    Row("files_get", "pyftp", "pyftpdlib"), Row("files_put", "pyftp", "pyftpdlib"),
    Row("listings", "pyftp", "pyftpdlib"), Row("listings", "pyftp-pipelined", "pyftpdlib"),
    Row("concurrent", "pyftp", "pyftpdlib"), Row("session_gets", "pyftp", "pyftpdlib"),
    Row("sha256", "hashlib"), Row("sha256", "blake3", "hashlib"),
]


def evaluate(r: Results) -> list[dict]:
    """Every row with a target, whether it was met (None: not measured)."""
    out = []
    for row in ROWS:
        s = r.scenarios.get(row.key)
        if row.need is None or s is None or not (s.runs.get(row.tool) or row.tool in s.errors):
            continue
        value = s.median(row.tool)
        if row.peer:
            peer = s.median(row.peer)
            value = value / peer if value is not None and peer else None
        met = None if value is None else (value <= row.need if row.at_most else value >= row.need)
        what = f"{row.tool} / {row.peer}" if row.peer else f"{row.tool} ({s.unit})"
        out.append({"scenario": row.key, "target": f"{s.title}: {what}", "reached": value,
                    "required": row.need, "at_most": row.at_most, "met": met})
    return out


def fmt(v: float | None) -> str:
    if v is None:
        return "-"
    if v >= 100:
        return f"{v:,.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def cell(s: Scenario, tool: str) -> str:
    v = s.runs.get(tool)
    if not v:
        return "failed: " + s.errors[tool][:60] if tool in s.errors else "-"
    if len(v) == 1:
        return fmt(v[0])
    return f"**{fmt(statistics.median(v))}** ({fmt(min(v))}-{fmt(max(v))})"


def _row_line(s: Scenario, row: Row) -> str:
    a, p = s.median(row.tool), s.median(row.peer)
    ratio = f"{a / p:.2f} x" if a and p else "-"
    peer = f"{row.peer}: {cell(s, row.peer)}" if row.peer else "-"
    target, met = "-", "-"
    if row.need is not None:
        sign = "<=" if row.at_most else ">="
        target = f"{sign} {row.need:g} x" if row.peer else f"{sign} {row.need:g} {s.unit}"
        value = (a / p if a and p else None) if row.peer else a
        if value is not None:
            met = "met" if (value <= row.need if row.at_most else value >= row.need) else "**not met**"
    return (f"| {s.title} | {s.unit} | {row.tool}: {cell(s, row.tool)} | {peer} | {ratio} | "
            f"{target} | {met} |")


def table(r: Results) -> list[str]:
    lines = ["| scenario | unit | pyftp | peer | ratio | target | met |",
             "|---|---|---|---|---|---|---|"]
    for row in ROWS:
        s = r.scenarios.get(row.key)
        if s is None or not (s.runs.get(row.tool) or row.tool in s.errors):
            continue
        if row.peer and not (s.runs.get(row.peer) or row.peer in s.errors):
            continue
        lines.append(_row_line(s, row))
    return lines


def markdown(head: dict, locations: list[Results]) -> str:
    m = head["machine"]
    lines = [f"Mode `{head['mode']}`, {m['started']}; {m['cpu']}, {m['cores']} cores, "
             f"{m['ram_gib']} GiB RAM, {m['os']}, Python {m['python']}; load average at "
             f"start {_load(m.get('load_at_start'))}, at end {_load(m.get('load_at_end'))}. "
             f"`pyftp --digest`: {', '.join(head['digests']) or 'not offered'}; "
             f"pyftp install: {m.get('install', 'unknown')}."]
    for r in locations:
        lines += ["", f"### Files in {r.tmp} ({r.fs})", "", *table(r)]
    lines += ["", "Bold: median; in brackets: min-max of the runs. Ratios are of medians.", "",
              "How each figure was taken:"]
    seen = set()
    for r in locations:
        for s in r.scenarios.values():
            for n in s.notes:
                if (s.key, n) not in seen:
                    seen.add((s.key, n))
                    lines.append(f"- {s.title}: {n}")
    for r in locations:
        tw = [f"{s.title}: {s.extra['time_wait_at_start']}" for s in r.scenarios.values()
              if "time_wait_at_start" in s.extra]
        if tw:
            lines += ["", f"TIME_WAIT sockets at the start ({r.fs}): " + "; ".join(tw)]
        errs = [f"- {s.title}: {tool} failed: {e}" for s in r.scenarios.values()
                for tool, e in s.errors.items()]
        if errs:
            lines += ["", f"Failures ({r.fs}):", *errs]
    return "\n".join(lines) + "\n"


def _load(v) -> str:
    return "-" if not v else "/".join(f"{x:.2f}" for x in v)


START, END = "<!-- bench-table:start -->", "<!-- bench-table:end -->"


def publish(md: str, png: Path | None) -> None:
    """Replace the tables between the markers in docs/benchmarks.md; copy the chart."""
    doc = REPO / "docs" / "benchmarks.md"
    text = doc.read_text()
    if START not in text or END not in text:
        raise SystemExit(f"bench: {doc} has no {START} ... {END} markers to fill")
    head, rest = text.split(START, 1)
    _old, tail = rest.split(END, 1)
    doc.write_text(f"{head}{START}\n{md}{END}{tail}")
    if png is not None:
        shutil.copyfile(png, REPO / "docs" / "benchmarks.png")
    log(f"updated {doc}" + ("" if png is None else " and docs/benchmarks.png"))

