"""The command line: pick the mode and the folders, run the scenarios location by
location, write bench.json, bench.md, bench.png (and, with --publish, the docs).

Import rule: imports every module of this package; nothing imports main.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from . import api, cli, system
from .chart import chart
from .common import MODES, MiB, Mode, Results, log, machine_info, versions
from .fixture import Bench, digests_offered
from .report import evaluate, markdown, publish

#: (name for --only, function); measured once, with the files in the first folder
ONCE = [("sha256", api.sha256_speed), ("startup", system.startup),
        ("memory", system.memory), ("idle", system.idle_clients)]
#: measured in every folder (the ones in FS_BOUND only: they depend on the file system)
EACH = [("cli-get", cli.cli_get_big), ("cli-put", cli.cli_put_big),
        ("cli-files", cli.cli_files), ("cli-listings", cli.cli_listings),
        ("cli-procs", cli.cli_processes), ("get", api.big_get), ("put", api.big_put),
        ("cold", api.big_get_cold), ("concurrent", api.concurrent), ("files", api.many_get),
        ("files", api.many_put), ("listings", api.listings),
        ("session", api.many_gets_one_session)]
FS_BOUND = {"cli-get", "cli-put", "cli-files", "get", "put", "files"}
SCENARIOS = list(dict.fromkeys(name for name, _ in ONCE + EACH))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="scripts/bench.py",
        description="pyftp as users run it (console scripts) and through its API, against "
                    "pyftpdlib + ftplib, FTP + sha256sum and the raw socket path, on "
                    "loopback, in one run")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true",
                   help="64 MiB files, 3 runs, one folder (a few minutes)")
    g.add_argument("--smoke", action="store_true", help="tiny sizes, 1 run (checks the script)")
    p.add_argument("--out", default="bench-results", help="output folder (default bench-results/)")
    p.add_argument("--tmp", action="append", metavar="DIR",
                   help="a folder for the files (repeat for several; default: the system "
                        "temporary folder, and /dev/shm too in a full run)")
    p.add_argument("--runs", type=int, default=None, help="timed runs per scenario")
    p.add_argument("--only", default=None,
                   help=f"comma-separated subset of: {', '.join(SCENARIOS)}")
    p.add_argument("--publish", action="store_true",
                   help="also update the table in docs/benchmarks.md and docs/benchmarks.png")
    p.add_argument("--no-chart", action="store_true", help="skip the PNG")
    return p


def folders(args, mode: Mode) -> list[str]:
    if args.tmp:
        return args.tmp
    out = [tempfile.gettempdir()]
    if mode.name == "full" and os.path.isdir("/dev/shm"):
        out.append("/dev/shm")
    return out


def check_space(p: argparse.ArgumentParser, mode: Mode, tmp: str) -> None:
    need = 6 * mode.big + 2 * max(mode.clients, mode.procs) * mode.client_size + 64 * MiB
    try:
        free = shutil.disk_usage(tmp).free
    except OSError as exc:
        p.error(f"--tmp {tmp}: {exc.strerror}")
    if free < need:
        p.error(f"{tmp} has {free // MiB} MiB free; this mode needs about {need // MiB} MiB "
                f"(choose another folder with --tmp, or --quick)")


def run_location(mode: Mode, tmp: str, first: bool, only: set[str], digests: list[str]) -> Results:
    results = Results(mode, tmp, _fs_of(tmp))
    steps = (ONCE if first else []) + [(n, f) for n, f in EACH if first or n in FS_BOUND]
    with tempfile.TemporaryDirectory(prefix="pyftp-bench-", dir=tmp) as work:
        bench = Bench(mode, Path(work), results, digests)
        try:
            bench.setup()
            for name, step in steps:
                if name in only:
                    log(f"scenario: {step.__name__} ({results.fs})")
                    step(bench)
        finally:
            bench.close()
    results.targets = evaluate(results)
    return results


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    try:
        import psutil  # noqa: F401
        import pyftpdlib  # noqa: F401
    except ImportError as exc:
        print(f"bench: {exc.name} is missing; install the bench extra: "
              f"pip install -e '.[bench]'", file=sys.stderr)
        return 2
    mode = MODES["quick" if args.quick else "smoke" if args.smoke else "full"]
    if args.runs:
        mode = Mode(**{**mode.__dict__, "runs": args.runs})
    only = set(SCENARIOS if not args.only else args.only.split(","))
    unknown = only - set(SCENARIOS)
    if unknown:
        p.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    tmps = folders(args, mode)
    for tmp in tmps:
        check_space(p, mode, tmp)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    head = {"mode": mode.name, "settings": mode.__dict__, "machine": machine_info(),
            "command": " ".join(["scripts/bench.py", *(sys.argv[1:] if argv is None else argv)]),
            "versions": versions(), "digests": digests_offered()}
    log(f"mode {mode.name}: {head['machine']['cpu']}, {head['machine']['cores']} cores; "
        f"folders {', '.join(tmps)}; pyftp --digest: {', '.join(head['digests']) or 'not offered'}")
    locations: list[Results] = []
    try:
        for i, tmp in enumerate(tmps):
            locations.append(run_location(mode, tmp, i == 0, only, head["digests"]))
    except KeyboardInterrupt:
        log("interrupted: writing what was measured so far")
    head["machine"]["load_at_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    write(args, out, head, locations)
    return 0


def write(args, out: Path, head: dict, locations: list[Results]) -> None:
    data = {**head, "locations": [
        {"tmp": r.tmp, "filesystem": r.fs, "targets": r.targets,
         "scenarios": {k: s.as_json() for k, s in r.scenarios.items()}} for r in locations]}
    (out / "bench.json").write_text(json.dumps(data, indent=1))
    md = markdown(head, locations)
    (out / "bench.md").write_text(md)
    if not args.no_chart and locations:
        chart(head, locations, out / "bench.png")
    if args.publish:
        publish(md, None if args.no_chart else out / "bench.png")
    print(md)
    log(f"wrote {out}/bench.json, bench.md" + ("" if args.no_chart else ", bench.png"))


def _fs_of(path: str) -> str:
    import psutil
    best = None
    real = os.path.realpath(path)
    for part in psutil.disk_partitions(all=True):
        inside = real == part.mountpoint or real.startswith(part.mountpoint.rstrip("/") + "/")
        if inside and (best is None or len(part.mountpoint) > len(best.mountpoint)):
            best = part
    return f"{best.fstype} ({best.mountpoint})" if best else "?"
