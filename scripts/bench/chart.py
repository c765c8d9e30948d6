"""The chart: the console scripts' throughput, many small operations, one-shot start-up
and memory, pyftp beside its peers (medians, min-max as error bars).

Import rule: imports common and report; matplotlib inside ``chart`` only.
"""
from __future__ import annotations

import statistics
from pathlib import Path

from .common import Results
from .report import FTP_SUM, fmt

#: FTP: a pyftpdlib server and an ftplib client
COLORS = {"pyftp": "#1f77b4", "pyftp --digest sha256": "#17becf", "pyftp -b": "#aec7e8",
          "pyftpdlib": "#ff7f0e", "FTP": "#ff7f0e", FTP_SUM: "#d62728", "raw": "#7f7f7f"}

#: (group label, [(series, scenario key, tool)]); the series name is the legend entry
Group = tuple[str, list[tuple[str, str, str]]]


def _bars(ax, r: Results, groups: list[Group], title: str, unit: str, log_scale=False) -> None:
    series: list[str] = []
    for _label, items in groups:  # only series with a figure: no gap for a tool not run
        series += [ser for ser, k, tool in items if ser not in series
                   and k in r.scenarios and r.scenarios[k].runs.get(tool)]
    width = 0.8 / max(1, len(series))
    drawn = False
    for i, ser in enumerate(series):
        xs, ys, lo, hi = [], [], [], []
        for g, (_label, items) in enumerate(groups):
            for sser, key, tool in items:
                s = r.scenarios.get(key)
                if sser != ser or s is None or not s.runs.get(tool):
                    continue
                v = s.runs[tool]
                med = statistics.median(v)
                xs.append(g + (i - (len(series) - 1) / 2) * width)
                ys.append(med)
                lo.append(med - min(v))
                hi.append(max(v) - med)
        if xs:
            drawn = True
            ax.bar(xs, ys, width, yerr=[lo, hi], capsize=2, label=ser,
                   color=COLORS.get(ser, "#8c564b"))
            for x, y in zip(xs, ys):
                ax.annotate(fmt(y), (x, y), ha="center", va="bottom", fontsize=6)
    if not drawn:
        ax.text(0.5, 0.5, "not measured in this run", ha="center", transform=ax.transAxes)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([g[0] for g in groups], fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.set_ylabel(unit)
    if log_scale:
        ax.set_yscale("log")
    if drawn:
        ax.legend(fontsize=7)


def _transfer_groups(r: Results, tag: str) -> list[Group]:
    tools = ["pyftp", "pyftp --digest sha256", "pyftpdlib", FTP_SUM, "raw"]
    return [(f"{what}\n{tag}", [(t, key, t) for t in tools])
            for what, key in (("get", "cli_get_big"), ("put", "cli_put_big"))]


def chart(head: dict, locations: list[Results], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first = locations[0]
    fig, axes = plt.subplots(2, 2, figsize=(14, 9.5))
    ax = axes[0][0]
    # one panel, several locations: each location's scenarios under their own keys
    merged = Results(first.mode, first.tmp, first.fs)
    merged.scenarios = {}
    for i, r in enumerate(locations):
        for key in ("cli_get_big", "cli_put_big"):
            if key in r.scenarios:
                merged.scenarios[f"{key}@{i}"] = r.scenarios[key]
    groups = [(label, [(ser, f"{key}@{i}", tool) for ser, key, tool in items])
              for i, r in enumerate(locations)
              for label, items in _transfer_groups(r, r.fs.split()[0])]
    _bars(ax, merged, groups, f"Console scripts, {first.mode.big >> 20} MiB "
          "(pyftp verified; pyftpdlib not)", "MiB/s")
    _bars(axes[0][1], first, [
        ("files", [("pyftp", "cli_files", "pyftp get -r"), ("pyftp -b", "cli_files", "pyftp -b gets"),
                   ("FTP", "cli_files", "pyftpdlib")]),
        ("10-entry\nlistings", [("pyftp -b", "cli_list_10", "pyftp -b ls"),
                                ("FTP", "cli_list_10", "ftplib nlst")]),
        ("wide\nlistings", [("pyftp -b", "cli_list_wide", "pyftp -b ls"),
                            ("FTP", "cli_list_wide", "ftplib nlst")]),
        (f"{first.mode.procs} one-shot\ngets (MiB/s)",
         [("pyftp", "cli_procs", "pyftp"), ("FTP", "cli_procs", "ftplib")]),
    ], "Many small operations (pyftp: get -r / -c; pyftp -b: a batch file)",
        "per second (log)", log_scale=True)
    _bars(axes[1][0], first, [
        ("pyftp --version", [("pyftp", "startup", "pyftp --version")]),
        ("one-shot put of a small file", [("pyftp", "startup", "pyftp -c put"),
                                          ("FTP", "startup", "ftplib one-shot put")]),
    ], "Start-up: wall time of one command (lower is better)", "ms")
    axes[1][0].axhline(100, color="#d62728", linestyle=":", linewidth=1)
    _bars(axes[1][1], first, [
        ("client,\nlarge get", [("pyftp", "rss_transfer", "pyftp-client get"),
                                ("FTP", "rss_transfer", "ftplib-client get")]),
        ("client,\nlarge put", [("pyftp", "rss_transfer", "pyftp-client put"),
                                ("FTP", "rss_transfer", "ftplib-client put")]),
        ("server,\nlarge transfer", [("pyftp", "rss_transfer", "pyftp-server"),
                                     ("FTP", "rss_transfer", "pyftpdlib-server")]),
        (f"server,\n{first.mode.idle} idle clients",
         [("pyftp", "rss_idle", "pyftp-server"), ("FTP", "rss_idle", "pyftpdlib-server")]),
    ], "Memory: peak RSS (lower is better)", "MiB")
    for y in (40, 64):
        axes[1][1].axhline(y, color="#d62728", linestyle=":", linewidth=1)
    m = head["machine"]
    fig.suptitle(f"pyftp as users run it, against FTP (pyftpdlib + ftplib), loopback, {m['cores']} "
                 f"cores ({head['mode']} mode, medians; bars: min-max)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
