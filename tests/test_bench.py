"""scripts/bench.py runs end to end (every scenario, tiny sizes) and writes its reports.

The figures themselves are not checked: no test asserts a time. What is checked is that
the benchmark still drives today's pyftp, pyftpdlib and the raw sender, verifies what it
moves, and leaves nothing behind.
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


def test_the_smoke_run_measures_every_scenario_and_cleans_up(tmp_path):
    out, tmp = tmp_path / "out", tmp_path / "tmp"
    tmp.mkdir()
    p = subprocess.run([sys.executable, str(BENCH), "--smoke", "--out", str(out),
                        "--tmp", str(tmp)], capture_output=True, text=True, timeout=180)
    assert p.returncode == 0, p.stderr[-3000:]
    data = json.loads((out / "bench.json").read_text())
    scen = data["scenarios"]
    assert set(scen) == {"sha256", "get_big", "get_big_cold", "put_big", "files_get",
                         "files_put", "listings", "concurrent", "session_gets",
                         "rss_transfer", "rss_idle", "startup"}
    for key, s in scen.items():
        assert not s["errors"], (key, s["errors"])
    for key in ("get_big", "put_big", "files_get", "files_put", "listings", "concurrent",
                "session_gets"):
        assert scen[key]["runs"]["pyftp"] and scen[key]["runs"]["pyftpdlib"], key
    assert scen["get_big"]["runs"]["raw"] and scen["put_big"]["runs"]["raw"]
    assert len(scen["session_gets"]["runs"]["pyftp"]) == 10  # ten blocks, in order
    assert {"pyftp-client get", "pyftp-client put", "pyftp-server"} <= set(scen["rss_transfer"]["runs"])
    assert {t["target"] for t in data["targets"]} >= {"pyftp --version",
                                                      "server RSS with idle clients"}
    md = (out / "bench.md").read_text()
    assert "| scenario | unit | pyftp | pyftpdlib + ftplib | ratio | reference |" in md
    assert (out / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert list(tmp.iterdir()) == []  # the temporary files and folders are gone
    assert p.stdout.startswith("Mode `smoke`")  # the table goes to stdout


def test_an_unknown_scenario_is_a_usage_error(tmp_path):
    p = subprocess.run([sys.executable, str(BENCH), "--smoke", "--only", "nope",
                        "--out", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "unknown scenario(s): nope" in p.stderr
