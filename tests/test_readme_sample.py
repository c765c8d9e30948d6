"""README's pytest example runs as written: its files are cut out of README.md, saved
in an empty folder and run by a separate ``python -m pytest``, which finds the
``pyftp_server`` fixture through the installed ``pytest11`` entry point alone."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

README = Path(__file__).resolve().parent.parent / "README.md"
SECTION = "## Testing your code with pytest"


def readme_section(title: str) -> str:
    """The text of README's section ``title``, up to the next ``## `` heading."""
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n{title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else len(text)]


def test_the_readme_pytest_example_runs_as_written(tmp_path: Path) -> None:
    files = dict(re.findall(r"<!-- file: (\S+) -->\n```python\n(.*?)```",
                            readme_section(SECTION), re.S))
    assert set(files) == {"upload.py", "test_upload.py"}
    for name, code in files.items():
        (tmp_path / name).write_text(code, encoding="utf-8")
    # a user's shell: no plugin switched off, nothing of this suite on the path
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "PYTEST_ADDOPTS", "PYTHONPATH")}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"\b2 passed\b", proc.stdout), proc.stdout
