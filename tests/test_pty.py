"""The shell in a real pseudo-terminal, as a person meets it: the prompt, Tab completion
of a remote path, a live progress bar, Ctrl-C, Ctrl-D, and history across two runs."""
from __future__ import annotations

import hashlib
import os
import re

import pytest

from pyftp.server import Account
from shellharness import PYFTP

pexpect = pytest.importorskip("pexpect")

TIMEOUT = 20  # every expect is bounded; none is expected to take more than a few seconds


def spawn(server, cwd, state, *options: str, after: tuple[str, ...] = ()):
    """``pyftp [options] HOST:PORT [after]`` in a 40x140 pseudo-terminal; (child, prompt)."""
    host, port = server.address
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYFTP_")}
    env.update(XDG_STATE_HOME=str(state), TERM="xterm-256color", HOME=str(state))
    env.pop("NO_COLOR", None)
    child = pexpect.spawn(PYFTP[0], [*PYFTP[1:], *options, f"{host}:{port}", *after], cwd=str(cwd),
                          env=env, encoding="utf-8", dimensions=(40, 140), timeout=TIMEOUT)
    prompt = re.escape(f"{host}:{port}:") + r"(/\S*?)(\x1b\[0m)?> "
    return child, prompt


@pytest.fixture
def places(tmp_path):
    local, state = tmp_path / "local", tmp_path / "state"
    local.mkdir()
    state.mkdir()
    return local, state


def finish(child) -> None:
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_prompt_completion_progress_bar_and_history(server, root, places):
    local, state = places
    data = os.urandom(4 * 1024 * 1024)
    (root / "big file.bin").write_bytes(data)
    (root / "other.txt").write_text("x")

    child, prompt = spawn(server, local, state, "--limit-rate", "2M")
    try:
        child.expect(prompt)
        child.send("get big\t")
        child.expect(re.escape("big\\ file.bin "))  # completed, with the space escaped
        child.send("\r")
        child.expect(r"\d+\.\d/4\.0 MiB")  # the live bar: bytes done / total
        child.expect(re.escape("/big file.bin -> big file.bin  4.0 MiB"))  # the summary
        child.expect(prompt)
        assert hashlib.sha256((local / "big file.bin").read_bytes()).digest() == \
            hashlib.sha256(data).digest()
        child.send("cd nowhere\r")
        child.expect("not found: /nowhere")
        child.expect(prompt)
        child.send("quit\r")
        finish(child)
    finally:
        child.close(force=True)

    history = (state / "pyftp" / "history").read_text()
    assert "get big\\ file.bin" in history and history.rstrip().endswith("quit")
    assert (state / "pyftp" / "history").stat().st_mode & 0o077 == 0

    child, prompt = spawn(server, local, state)
    try:
        child.expect(prompt)
        child.send("\x1b[A")  # Up: the last command of the previous run comes back
        child.expect("quit")
        child.send("\x15")  # Ctrl-U clears the line
        child.send("\x04")  # Ctrl-D leaves
        finish(child)
    finally:
        child.close(force=True)


def test_ctrl_c_cancels_a_transfer_and_the_shell_goes_on(server, root, places):
    local, state = places
    (root / "big.bin").write_bytes(os.urandom(4 * 1024 * 1024))
    child, prompt = spawn(server, local, state, "--limit-rate", "1M")
    try:
        child.expect(prompt)
        child.send("get big.bin\r")
        child.expect(r"\d+\.\d/4\.0 MiB")
        child.sendintr()
        child.expect("cancelled: get")
        child.expect("reconnected to")
        child.expect(prompt)
        assert not (local / "big.bin").exists()  # the partial stays hidden
        assert any(n.startswith(".big.bin") for n in os.listdir(local))
        child.send("pwd\r")
        child.expect("\r\n/\r\n")
        child.expect(prompt)
        child.sendintr()  # Ctrl-C at the prompt: a fresh line, not an exit
        child.expect(prompt)
        child.send("exit\r")
        finish(child)
    finally:
        child.close(force=True)


def test_one_shot_at_a_terminal_shows_a_tqdm_bar(server, root, places):
    local, state = places
    (root / "blob.bin").write_bytes(os.urandom(3 * 1024 * 1024))
    child, _ = spawn(server, local, state, "--limit-rate", "3M", after=("-c", "get blob.bin"))
    try:
        child.expect(r"get blob\.bin: +\d+%\|")  # tqdm's "name: 42%|████"
        child.expect(re.escape("/blob.bin -> blob.bin  3.0 MiB"))
        finish(child)
    finally:
        child.close(force=True)
    assert (local / "blob.bin").stat().st_size == 3 * 1024 * 1024


def test_history_is_written_after_every_command_not_only_at_exit(server, places):
    local, state = places
    child, prompt = spawn(server, local, state)
    history = state / "pyftp" / "history"
    try:
        child.expect(prompt)
        child.send("pwd; lpwd\r")  # ';' works at the prompt as in -c
        child.expect(re.escape(str(local)))
        child.expect(prompt)
        assert history.read_text().splitlines()[-1] == "pwd; lpwd"  # before any exit
        child.kill(9)  # a crash: the session's history is already on disk
    finally:
        child.close(force=True)
    assert "pwd; lpwd" in history.read_text()


def test_a_login_server_asks_for_user_and_password(make_server, places):
    local, state = places
    server = make_server(authenticator=lambda u, p: Account(u) if (u, p) == ("ann", "pw")
                         else None)
    child, prompt = spawn(server, local, state)
    try:
        child.expect("user for ")
        child.send("ann\r")
        child.expect("password for ann@")
        child.send("pw\r")
        child.expect(prompt)
        child.send("bye\r")
        finish(child)
    finally:
        child.close(force=True)
