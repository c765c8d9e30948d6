"""scripts/bench.py runs end to end (every scenario, tiny sizes) and writes its reports.

The figures themselves are not checked: no test asserts a time. What is checked is that
the benchmark still drives today's console scripts, Python API, pyftpdlib, the raw
sender and "FTP + sha256sum", verifies what they move, evaluates the issue's targets,
and leaves nothing behind.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("pyftpdlib")
pytest.importorskip("psutil")
pytest.importorskip("matplotlib")

BENCH = Path(__file__).resolve().parent.parent / "scripts" / "bench.py"
PYFTP = Path(sys.executable).parent / "pyftp"


@pytest.mark.slow
def test_the_smoke_run_measures_every_scenario_and_cleans_up(tmp_path):
    out, tmp = tmp_path / "out", tmp_path / "tmp"
    tmp.mkdir()
    p = subprocess.run([sys.executable, str(BENCH), "--smoke", "--out", str(out),
                        "--tmp", str(tmp)], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    data = json.loads((out / "bench.json").read_text())
    [loc] = data["locations"]
    scen = loc["scenarios"]
    assert set(scen) == {"sha256", "startup", "rss_transfer", "rss_idle",
                         "cli_get_big", "cli_put_big", "cli_files", "cli_list_10",
                         "cli_list_wide", "cli_procs", "get_big", "put_big", "get_big_cold",
                         "files_get", "files_put", "listings", "concurrent", "session_gets"}
    for key, s in scen.items():
        assert not s["errors"], (key, s["errors"])
    for key in ("cli_get_big", "cli_put_big"):
        assert {"pyftp", "pyftpdlib", "FTP + sha256sum", "raw"} <= set(scen[key]["runs"]), key
    # both digests exactly when the console script offers --digest
    help_text = subprocess.run([str(PYFTP), "--help"], capture_output=True, text=True).stdout
    offered = "--digest" in help_text
    assert ("pyftp --digest sha256" in scen["cli_get_big"]["runs"]) == offered
    assert set(scen["cli_files"]["runs"]) == {"pyftp get -r", "pyftp -b gets", "pyftpdlib"}
    for key in ("cli_list_10", "cli_list_wide"):
        assert set(scen[key]["runs"]) == {"pyftp -b ls", "ftplib nlst"}
    assert set(scen["cli_procs"]["runs"]) == {"pyftp", "ftplib"}
    for key in ("get_big", "put_big", "files_get", "files_put", "listings", "concurrent",
                "session_gets"):
        assert scen[key]["runs"]["pyftp"] and scen[key]["runs"]["pyftpdlib"], key
    assert len(scen["session_gets"]["runs"]["pyftp"]) == 10  # ten blocks, in order
    assert {"pyftp-client get", "pyftp-client put", "pyftp-server"} <= set(scen["rss_transfer"]["runs"])
    targets = {t["target"]: t for t in loc["targets"]}
    assert len(targets) == 15 + 2 * offered
    assert all(t["met"] in (True, False) for t in targets.values())
    md = (out / "bench.md").read_text()
    assert "| scenario | unit | pyftp | peer | ratio | target | met |" in md
    assert "| >= 1.5 x |" in md and "<= 100 ms" in md
    assert (out / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert list(tmp.iterdir()) == []  # the temporary files and folders are gone
    assert p.stdout.startswith("Mode `smoke`")  # the table goes to stdout


def test_an_unknown_scenario_is_a_usage_error(tmp_path):
    p = subprocess.run([sys.executable, str(BENCH), "--smoke", "--only", "nope",
                        "--out", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "unknown scenario(s): nope" in p.stderr
