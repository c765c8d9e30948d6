"""The pure parts of pyftp.sync: the plan (what to send, skip, delete, create), the
retry policy and typed problems. No server, no sockets: these run in milliseconds."""
from __future__ import annotations

import pytest

from pyftp import sync
from pyftp.errors import AlreadyExistsError, TransportError
from pyftp.sync.options import RetryPolicy, make_options
from pyftp.sync.plan import make_plan, under
from pyftp.sync.report import Problem, SyncReport
from pyftp.sync.walk import LocalFile, Tree


def tree(files: dict[str, tuple[int, float]] | None = None, dirs=(), ignored=(),
         errors=()) -> Tree:
    t = Tree()
    t.files = {rel: LocalFile(f"/x/{rel}", size, mtime)
               for rel, (size, mtime) in (files or {}).items()}
    t.dirs = {d: 1.0 for d in dirs}
    t.ignored = [Problem(rel, "special", "not a regular file") for rel in ignored]
    t.errors = [Problem(rel, "failed", "cannot list folder") for rel in errors]
    return t


def kinds(plan) -> dict[str, tuple[str, str]]:
    return {a.path: (a.kind, a.reason) for a in plan.files}


# ---------------------------------------------------------------------- the plan

def test_without_compare_every_file_is_sent_and_every_folder_made():
    src = tree({"a": (1, 1.0), "d/b": (2, 1.0)}, dirs=["d", "e"])
    plan = make_plan(src, Tree())
    assert [a.path for a in plan.sends] == ["a", "d/b"]
    assert plan.mkdirs == ["d", "e"] and plan.skipped == [] and plan.problems == []


def test_compare_by_size_and_time_skips_identical_files_only():
    src = tree({"same": (3, 10.0), "new": (1, 1.0), "bigger": (5, 10.0), "newer": (3, 20.0),
                "close": (3, 10.0005)})
    dst = tree({"same": (3, 10.0), "bigger": (4, 10.0), "newer": (3, 10.0),
                "close": (3, 10.0)})
    plan = make_plan(src, dst, compare="mtime")
    assert kinds(plan) == {"bigger": ("send", "size differs"), "close": ("skip", "same size and time"),
                           "new": ("send", "new"), "newer": ("send", "modification time differs"),
                           "same": ("skip", "same size and time")}
    assert sorted(plan.skipped) == ["close", "same"]
    loose = make_plan(src, dst, compare="mtime", mtime_tolerance=20)
    assert kinds(loose)["newer"] == ("skip", "same size and time")


def test_compare_by_checksum_leaves_equal_sizes_to_their_digests():
    src = tree({"a": (3, 1.0), "b": (3, 1.0), "c": (4, 1.0)})
    dst = tree({"a": (3, 1.0), "b": (3, 1.0), "c": (3, 1.0)})
    plan = make_plan(src, dst, compare="checksum")
    assert [a.path for a in plan.to_hash] == ["a", "b"]
    assert [a.path for a in plan.sends] == ["c"]
    plan.settle_checksums({"a": False, "b": True})
    assert kinds(plan)["a"] == ("skip", "same checksum")
    assert kinds(plan)["b"] == ("send", "checksum differs")
    assert [a.path for a in plan.sends] == ["b", "c"] and plan.to_hash == []


def test_a_file_against_a_folder_is_a_conflict_that_blocks_what_is_under_it():
    src = tree({"x/inner": (1, 1.0), "y": (1, 1.0)}, dirs=["x"])
    dst = tree({"x": (1, 1.0)}, dirs=["y"])
    plan = make_plan(src, dst, compare="mtime")
    assert plan.conflicts == ["x", "y"] and plan.sends == [] and plan.mkdirs == []
    assert [(p.path, p.kind) for p in plan.problems] == [("x", "conflict"), ("y", "conflict")]
    assert [a.kind for a in plan.actions()] == ["conflict", "conflict"]


def test_delete_removes_extras_and_what_stands_in_the_way_first():
    src = tree({"x/inner": (1, 1.0), "keep": (1, 1.0)}, dirs=["x"], ignored=["link"])
    dst = tree({"x": (1, 1.0), "keep": (1, 1.0), "old": (7, 1.0), "link": (1, 1.0),
                "gone/deep/f": (1, 1.0)}, dirs=["gone", "gone/deep"])
    plan = make_plan(src, dst, compare="mtime", delete=True)
    assert plan.pre_files == ["x"] and plan.pre_dirs == []
    assert plan.post_files == ["gone/deep/f", "old"]   # "link" was left out on purpose
    assert plan.post_dirs == ["gone/deep", "gone"]     # deepest first
    assert plan.mkdirs == ["x"] and [a.path for a in plan.sends] == ["x/inner"]
    assert plan.problems == []
    deletes = [(a.kind, a.path, a.size) for a in plan.actions() if a.kind in ("delete", "rmdir")]
    assert ("delete", "old", 7) in deletes and ("rmdir", "gone", 0) in deletes


def test_a_source_that_could_not_be_read_deletes_nothing():
    src = tree({"a": (1, 1.0)}, errors=["sub"])
    dst = tree({"a": (1, 1.0), "extra": (1, 1.0)})
    plan = make_plan(src, dst, compare="mtime", delete=True)
    assert plan.post_files == [] and [p.kind for p in plan.problems] == ["kept"]


def test_under_matches_whole_path_components():
    assert under("a/b", ["a"]) and under("a", ("a",))
    assert not under("ab", ["a"]) and not under("a", [])


# ---------------------------------------------------------------------- retries

def test_the_default_retry_policy_waits_a_minute_in_all():
    policy = RetryPolicy()
    assert policy.retries == 3 and sum(policy.delays()) >= 60
    assert policy.delays() == sorted(policy.delays())  # never shorter than the last
    assert max(RetryPolicy(retries=10).delays()) == policy.max_backoff


def test_retry_lines_read_as_sentences():
    policy = RetryPolicy(retries=5, backoff=0.5, factor=2)
    assert policy.retry_line("connection lost (timed out)", 2) == \
        "connection lost (timed out); retry 2 of 5 in 2 s"
    assert RetryPolicy().retry_line("x", 3).endswith("retry 3 of 3 in 30 s")
    assert RetryPolicy(retries=1).gave_up_line("refused") == "gave up after 1 retry (refused)"


def test_the_old_keywords_override_the_policy():
    opts = make_options(retry=RetryPolicy(retries=7, max_backoff=9), backoff=0.001)
    assert opts.retry == RetryPolicy(retries=7, backoff=0.001, max_backoff=9)
    assert make_options(retries=0).retry.delays() == []
    with pytest.raises(ValueError, match="retries must be 0 or more"):
        make_options(retries=-1)


# ---------------------------------------------------------------------- problems

def test_a_problem_reads_as_the_old_pair_and_carries_its_error():
    exc = AlreadyExistsError("exists: /f")
    p = Problem("f", "exists", "already there", exc, "use overwrite to replace it")
    path, why = p
    assert (path, why) == ("f", "already there") and p[1] == "already there"
    assert dict([p]) == {"f": "already there"}
    assert p.text == "already there (use overwrite to replace it)" and p.error is exc
    with pytest.raises(ValueError, match="unknown problem kind"):
        Problem("f", "oops", "x")
    for kind in ("no_match", "exists", "failed", "conflict", "folder", "special", "outside"):
        assert kind in sync.PROBLEM_KINDS


def test_merged_reports_prefix_their_problems():
    inner = SyncReport("a", "b", "get")
    inner.errors.append(Problem("f", "failed", "boom", TransportError("boom")))
    outer = SyncReport("x", "y", "get")
    outer.merge(inner, "sub")
    assert outer.errors[0].path == "sub/f" and outer.errors[0].kind == "failed"
    assert isinstance(outer.errors[0].error, TransportError)
