"""The object-store backend's own promises, on a real store (scripts/s3-store start):
resume on another server, two writers to one name, the janitor, the jail on keys, and
folder semantics that differ from a disk. The common server tests run on this backend
too (conftest's ``backend`` parameter); these are the ones only an object store has.
"""
from __future__ import annotations

import concurrent.futures
import os

import pytest

from conftest import s3_unavailable
from helpers import RawConn, sha, wait_for, without_token
from pyftp import Client, errors

pytestmark = [pytest.mark.s3]
MiB = 1 << 20

if s3_unavailable():
    pytest.skip(f"object-store backend not tested: {s3_unavailable()}",
                allow_module_level=True)


@pytest.fixture
def store(request, s3_bucket):
    """A fresh prefix of the test run's bucket: (s3://URL, boto3 client, bucket, prefix)."""
    import boto3
    from botocore.config import Config
    from conftest import _prefixes
    prefix = f"b{next(_prefixes)}/"
    return (f"s3://{s3_bucket}/{prefix}",
            boto3.client("s3", config=Config(s3={"addressing_style": "path"})),
            s3_bucket, prefix)


def keys(s3, bucket: str, prefix: str = "") -> list[str]:
    r = s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"] for o in r.get("Contents", ()))


def uploads(s3, bucket: str, prefix: str) -> list[dict]:
    return s3.list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads", [])


def stored_parts(s3, bucket: str, prefix: str) -> int:
    ups = uploads(s3, bucket, prefix)
    return sum(len(s3.list_parts(Bucket=bucket, Key=u["Key"], UploadId=u["UploadId"])
                   .get("Parts", [])) for u in ups)


def cut_after_parts(server, s3, bucket, prefix, name: str, data: bytes, first: int) -> str:
    """A v1 put of ``data`` cut after ``first`` bytes, once a part is in the store;
    return the resume token it was given."""
    c = RawConn(server.address)
    reply, _ = c.request({"op": "put", "path": name, "total": len(data), "sha256": sha(data)})
    assert without_token(reply) == {"ok": True, "offset": 0}, reply
    c.send_frame({"op": "data", "size": len(data)}, data[:first])
    wait_for(lambda: stored_parts(s3, bucket, prefix) >= 1, 30, "a part in the store")
    c.close()
    wait_for(lambda: server.session_count == 0, 10, "the cut session to end")
    return reply["token"]


def test_a_cut_put_resumes_on_another_server_and_nothing_partial_shows(make_server, store,
                                                                        tmp_path):
    url, s3, bucket, prefix = store
    a, b = make_server(root=url), make_server(root=url)
    data = os.urandom(20 * MiB + 123)
    cut_after_parts(a, s3, bucket, prefix, "big.bin", data, 9 * MiB)
    with Client(*a.address, timeout=10) as ca:
        assert ca.ls("/") == []  # nothing partial published, the hidden keys not listed
    c = RawConn(b.address)
    reply, _ = c.request({"op": "put", "path": "big.bin", "total": len(data),
                          "sha256": sha(data)})
    assert reply["ok"] and reply["offset"] == 8 * MiB, reply  # one whole part kept
    c.send_frame({"op": "data", "size": len(data) - reply["offset"]}, data[reply["offset"]:])
    final, _ = c.read_frame()
    c.close()
    assert final == {"ok": True, "total": len(data), "sha256": sha(data), "path": "/big.bin"}
    back = tmp_path / "back"
    with Client(*a.address, timeout=10) as ca:
        ca.get("big.bin", back)
        assert ca.hash("big.bin") == sha(data)
    assert back.read_bytes() == data
    assert keys(s3, bucket, prefix) == [prefix + "big.bin"]  # hidden object, sidecar gone
    assert uploads(s3, bucket, prefix) == []


def test_a_resumed_put_with_other_bytes_is_never_published(make_server, store):
    """The digest pins the content: a resume whose later bytes differ fails the final
    check on the resuming server, end to end, and publishes nothing."""
    url, s3, bucket, prefix = store
    a, b = make_server(root=url), make_server(root=url)
    data = os.urandom(17 * MiB)
    cut_after_parts(a, s3, bucket, prefix, "x.bin", data, 9 * MiB)
    c = RawConn(b.address)
    reply, _ = c.request({"op": "put", "path": "x.bin", "total": len(data), "sha256": sha(data)})
    rest = bytearray(data[reply["offset"]:])
    rest[-1] ^= 1
    c.send_frame({"op": "data", "size": len(rest)}, bytes(rest))
    final, _ = c.read_frame()
    c.close()
    assert final["error"] == "checksum_mismatch"
    assert prefix + "x.bin" not in keys(s3, bucket, prefix)


def test_two_writers_to_one_name_one_intact_version_wins(make_server, store, tmp_path):
    url, s3, bucket, prefix = store
    servers = [make_server(root=url), make_server(root=url)]
    blobs = [os.urandom(9 * MiB) for _ in range(2)]
    for i, blob in enumerate(blobs):
        (tmp_path / f"w{i}").write_bytes(blob)
    for round_ in range(3):
        name = f"race{round_}.bin"

        def put(i: int):
            with Client(*servers[i].address, timeout=30) as c:
                try:
                    c.put(tmp_path / f"w{i}", name, overwrite=True)
                    return "ok"
                except (errors.BusyError, errors.AlreadyExistsError) as exc:
                    return type(exc).__name__
        with concurrent.futures.ThreadPoolExecutor(2) as ex:
            outcomes = list(ex.map(put, range(2)))
        assert "ok" in outcomes, outcomes
        body = s3.get_object(Bucket=bucket, Key=prefix + name)["Body"].read()
        assert body in blobs  # one writer's bytes, whole, never a mix


def test_the_janitor_aborts_abandoned_uploads(make_server, store):
    url, s3, bucket, prefix = store
    a = make_server(root=url)
    data = os.urandom(17 * MiB)
    cut_after_parts(a, s3, bucket, prefix, "left.bin", data, 9 * MiB)
    assert len(uploads(s3, bucket, prefix)) == 1
    assert a.storage.clean_partials(ttl=3600) == 0  # young: kept for a resume
    assert a.storage.clean_partials(ttl=0) >= 1
    assert uploads(s3, bucket, prefix) == []
    assert keys(s3, bucket, prefix) == []


def test_the_jail_keeps_every_key_inside_the_prefix(make_server, store, tmp_path):
    url, s3, bucket, prefix = store
    outside = prefix.rstrip("/") + "-outside/secret.txt"
    s3.put_object(Bucket=bucket, Key=outside, Body=b"secret")
    s3.put_object(Bucket=bucket, Key="top-secret.txt", Body=b"secret")
    src = tmp_path / "p.txt"
    src.write_bytes(b"payload")
    srv = make_server(root=url)
    outside_name = outside.split("/")[0]
    with Client(*srv.address, timeout=10) as c:
        for path in ("../top-secret.txt", f"../{outside_name}/secret.txt",
                     "/../../top-secret.txt", f"..//{outside_name}/secret.txt"):
            with pytest.raises(errors.NotFoundError):
                c.get(path, tmp_path / "got")
            with pytest.raises(errors.NotFoundError):
                c.hash(path)
        for target in ("../escape.txt", "../../escape.txt"):  # '..' stops at the root
            c.put(src, target, overwrite=True)
        with pytest.raises(errors.NotFoundError):  # no such folder inside the prefix
            c.put(src, f"../{outside_name}/x.txt")
        with pytest.raises(errors.PermissionDeniedError):
            c.put(src, ".p.txt.pyftp-part")
        with pytest.raises(errors.PermissionDeniedError):
            c.mv("p.txt", "..")
    every = keys(s3, bucket)
    assert [k for k in every if k.startswith(prefix)] == [prefix + "escape.txt"]
    assert outside in every and "top-secret.txt" in every
    assert s3.get_object(Bucket=bucket, Key=outside)["Body"].read() == b"secret"
    assert not any(k.endswith("escape.txt") and not k.startswith(prefix) for k in every)


def test_folders_on_an_object_store(make_server, store, tmp_path):
    url, s3, bucket, prefix = store
    srv = make_server(root=url)
    src = tmp_path / "f.txt"
    src.write_bytes(b"data")
    with Client(*srv.address, timeout=10) as c:
        c.mkdir("empty")
        assert keys(s3, bucket, prefix) == [prefix + "empty/"]  # the marker
        c.mkdir("d")
        c.put(src, "d/f.txt")
        with pytest.raises(errors.NotEmptyError):
            c.rmdir("d")
        with pytest.raises(errors.PermissionDeniedError, match="one by one"):
            c.mv("d", "d2")
        c.mv("empty", "moved")  # an empty folder moves: it is only its marker
        c.mv("d/f.txt", "moved/f.txt")  # copy + delete
        assert [e.name for e in c.ls("/")] == ["d", "moved"]
        c.rmdir("d")
        assert [e.name for e in c.ls("moved")] == ["f.txt"]
        with pytest.raises(errors.NotFoundError):
            c.mkdir("no/such")
        c.mkdir("a/b/c", parents=True)
        assert [e.name for e in c.ls("a/b")] == ["c"]
