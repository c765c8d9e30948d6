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
from pyftp import Client, digests, errors

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
        # the client negotiated BLAKE3; the object was put in SHA-256: read once to hash
        assert ca.hash("big.bin") == digests.hash_bytes(data, ca.algorithm)
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


# ---------------------------------------------------------------------- the negotiated digest
needs_blake3 = pytest.mark.skipif("blake3" not in digests.ALGORITHMS,
                                  reason="this build has no blake3 package")


def b3(data: bytes) -> str:
    return digests.hash_bytes(data, "blake3")


@needs_blake3
@pytest.mark.parametrize("size", [1000, 9 * MiB])  # one PutObject, a multipart upload
def test_the_metadata_names_the_algorithm_and_others_are_hashed_once(make_server, store,
                                                                     tmp_path, size):
    url, s3, bucket, prefix = store
    srv = make_server(root=url)
    data = os.urandom(size)
    (tmp_path / "f.bin").write_bytes(data)
    with Client(*srv.address, timeout=30, digest="blake3") as c:
        assert c.put(tmp_path / "f.bin", "f.bin").digest == b3(data)
        assert c.hash("f.bin") == b3(data)
    meta = s3.head_object(Bucket=bucket, Key=prefix + "f.bin")["Metadata"]
    assert meta["pyftp-blake3"] == b3(data) and "pyftp-sha256" not in meta
    # another server, another algorithm: the object is read once to hash it
    other = make_server(root=url)
    with Client(*other.address, timeout=30, digest="sha256") as c:
        assert c.hash("f.bin") == sha(data)
        got = c.get("f.bin", tmp_path / "back.bin")
        assert got.algorithm == "sha256" and got.digest == sha(data)
    assert (tmp_path / "back.bin").read_bytes() == data


def test_an_object_another_tool_made_is_hashed_in_the_sessions_algorithm(make_server, store):
    url, s3, bucket, prefix = store
    data = os.urandom(300_000)  # past the in-memory read: the digest comes by a second GET
    s3.put_object(Bucket=bucket, Key=prefix + "plain.bin", Body=data)
    srv = make_server(root=url)
    for algorithm in digests.ALGORITHMS:
        with Client(*srv.address, timeout=10, digest=algorithm) as c:
            assert c.hash("plain.bin") == digests.hash_bytes(data, algorithm)


@pytest.mark.parametrize("size", [100_000, 3 * MiB])  # in memory, ranged GETs
def test_ranged_gets_return_their_range_with_its_digest(make_server, store, size):
    url, s3, bucket, prefix = store
    data = os.urandom(size)
    s3.put_object(Bucket=bucket, Key=prefix + "r.bin", Body=data)
    srv = make_server(root=url)
    with Client(*srv.address, timeout=10) as c:
        for offset, length in ((0, 10), (size // 2, size // 3), (size - 7, 7), (size, 0),
                               (5, size - 5), (1, min(300_000, size - 1))):
            assert c.get_range("r.bin", offset, length) == data[offset:offset + length]
        with pytest.raises(errors.BadRequestError, match="past the end"):
            c.get_range("r.bin", size - 7, 8)
        assert c.get_range("r.bin", 1, 2) == data[1:3]  # still in step
    with RawConn(srv.address, hello=False) as conn:
        conn.request({"op": "hello", "version": 1, "digests": ["sha256"]})
        n = min(400_000, size - 3)
        head, got = conn.request({"op": "get", "path": "r.bin", "offset": 3, "length": n})
        assert (head["size"], head["total"], got) == (n, size, data[3:3 + n])
        assert conn.read_frame()[0] == {"ok": True, "algorithm": "sha256",
                                        "digest": sha(data[3:3 + n])}


@needs_blake3
def test_a_trailer_put_resumes_on_another_server_with_the_prefix_digest(make_server, store):
    url, s3, bucket, prefix = store
    a, b = make_server(root=url), make_server(root=url)
    data = os.urandom(17 * MiB)
    c = RawConn(a.address, hello=False)
    c.request({"op": "hello", "version": 1, "digests": ["blake3"]})
    reply, _ = c.request({"op": "put", "path": "t.bin", "total": len(data), "trailer": True})
    assert reply["ok"] and reply["offset"] == 0, reply
    c.send_frame({"op": "data", "size": len(data)}, data[:9 * MiB])
    wait_for(lambda: stored_parts(s3, bucket, prefix) >= 1, 30, "a part in the store")
    c.close()
    wait_for(lambda: a.session_count == 0, 10, "the cut session to end")
    side = s3.get_object(Bucket=bucket, Key=prefix + ".t.bin.pyftp-part.json")["Body"].read()
    assert b'"algorithm": "blake3"' in side
    with RawConn(b.address, hello=False) as c:
        c.request({"op": "hello", "version": 1, "digests": ["blake3"]})
        reply, _ = c.request({"op": "put", "path": "t.bin", "total": len(data), "trailer": True,
                              "token": reply["token"]})
        kept = reply["offset"]
        assert kept == 8 * MiB and reply["prefix_digest"] == b3(data[:kept]), reply
        c.send_frame({"op": "data", "size": len(data) - kept}, data[kept:])
        c.send_frame({"op": "verify", "digest": b3(data)})
        final, _ = c.read_frame()
    assert final == {"ok": True, "total": len(data), "algorithm": "blake3", "digest": b3(data),
                     "path": "/t.bin"}
    assert s3.get_object(Bucket=bucket, Key=prefix + "t.bin")["Body"].read() == data


@needs_blake3
def test_a_digest_in_another_algorithm_pins_nothing(make_server, store):
    """A partial pinned by a SHA-256 is not resumed by a BLAKE3 put of the same bytes
    (its digest vouches for nothing in SHA-256), nor by a trailer put without the token."""
    url, s3, bucket, prefix = store
    a = make_server(root=url)
    data = os.urandom(17 * MiB)
    cut_after_parts(a, s3, bucket, prefix, "p.bin", data, 9 * MiB)
    with RawConn(a.address, hello=False) as c:
        c.request({"op": "hello", "version": 1, "digests": ["blake3"]})
        reply, _ = c.request({"op": "put", "path": "p.bin", "total": len(data),
                              "digest": b3(data)})
        assert reply["ok"] and reply["offset"] == 0, reply
    wait_for(lambda: a.session_count == 0, 10, "the session to end")
    cut_after_parts(a, s3, bucket, prefix, "q.bin", data, 9 * MiB)
    with RawConn(a.address) as c:
        reply, _ = c.request({"op": "put", "path": "q.bin", "total": len(data), "trailer": True})
        assert reply["ok"] and reply["offset"] == 0 and "prefix_sha256" not in reply, reply


def test_a_v1_resume_by_digest_gets_a_fresh_token_never_the_owners(make_server, store):
    """Whoever knows a cut upload's total and SHA-256 may finish it (the digest pins the
    bytes) but is never handed the owner's token (red-team case a, on a bucket)."""
    url, s3, bucket, prefix = store
    a, b = make_server(root=url), make_server(root=url)
    data = os.urandom(17 * MiB)
    owners = cut_after_parts(a, s3, bucket, prefix, "v.bin", data, 9 * MiB)
    with RawConn(b.address) as c:
        reply, _ = c.request({"op": "put", "path": "v.bin", "total": len(data),
                              "sha256": sha(data)})
        assert reply["ok"] and reply["offset"] == 8 * MiB, reply
        assert reply["token"] != owners
        c.send_frame({"op": "data", "size": len(data) - reply["offset"]}, data[reply["offset"]:])
        assert c.read_frame()[0]["ok"] is True
    assert s3.get_object(Bucket=bucket, Key=prefix + "v.bin")["Body"].read() == data


def test_a_move_left_half_done_by_a_dead_server_does_not_hold_the_name(make_server, store):
    url, s3, bucket, prefix = store
    srv = make_server(root=url)
    s3.put_object(Bucket=bucket, Key=prefix + "src.txt", Body=b"moved")
    s3.put_object(Bucket=bucket, Key=prefix + ".dst.txt.pyftp-part.json",
                  Body=b'{"move": true, "server": "gone", "lease": 0}')
    with Client(*srv.address, timeout=10) as c:
        c.mv("src.txt", "dst.txt")
        assert [e.name for e in c.ls("/")] == ["dst.txt"]
    assert keys(s3, bucket, prefix) == [prefix + "dst.txt"]


def test_trees_round_trip_with_their_times_and_folders_are_not_from_1970(make_server, store,
                                                                       tmp_path):
    """mtime lives in metadata, so put -r / get -r / mirror work as on a folder; a
    folder's time is when its marker was made."""
    from pyftp import sync
    url, s3, bucket, prefix = store
    srv = make_server(root=url)
    src = tmp_path / "src"
    (src / "a" / "b").mkdir(parents=True)
    (src / "empty").mkdir()
    for rel, t in (("top.txt", 1_600_000_000_123_456_000), ("a/b/deep.bin", 1_500_000_000)):
        (src / rel).write_bytes(os.urandom(1000))
        os.utime(src / rel, ns=(t, t))
    with Client(*srv.address, timeout=10) as c:
        assert sync.put_tree(c, src, "/t").ok
        assert sync.get_tree(c, "/t", tmp_path / "back").ok
        assert sync.mirror(c, src, "/t", reverse=True).sent == []  # nothing changed
    for rel in ("top.txt", "a/b/deep.bin"):
        assert (tmp_path / "back" / rel).read_bytes() == (src / rel).read_bytes()
        assert abs((tmp_path / "back" / rel).stat().st_mtime_ns
                   - (src / rel).stat().st_mtime_ns) < 1000
    for rel in ("a", "a/b", "empty"):
        assert (tmp_path / "back" / rel).stat().st_mtime > 1_700_000_000


def test_names_listings_and_no_disk_usage(make_server, store):
    """``list_names`` (ls with names: a folder's name ends in /) and ``disk_usage``
    (df: a bucket has no capacity to report) on the object store."""
    url, s3, bucket, prefix = store
    s3.put_object(Bucket=bucket, Key=prefix + "b.txt", Body=b"b")
    s3.put_object(Bucket=bucket, Key=prefix + "a/x", Body=b"x")
    s3.put_object(Bucket=bucket, Key=prefix + "a.txt", Body=b"a")
    storage = make_server(root=url).storage
    assert storage.list_names("/", "/") == ["a/", "a.txt", "b.txt"]
    assert storage.list_names("/", "a") == ["x"]
    assert storage.disk_usage() is None
