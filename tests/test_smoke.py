import hashlib
import os

from pyftp import Client


def test_put_get_roundtrip(client, root, tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    res = client.put(src, "copy.bin")
    assert res.sha256 == hashlib.sha256(src.read_bytes()).hexdigest()
    assert (root / "copy.bin").read_bytes() == src.read_bytes()
    out = tmp_path / "back.bin"
    client.get("copy.bin", out)
    assert out.read_bytes() == src.read_bytes()
    assert [e.name for e in client.ls()] == ["copy.bin"]
