"""The exception tree and the wire-code table of pyftp.errors."""
from __future__ import annotations

import builtins

import pytest

from pyftp import errors
from pyftp.errors import (ERROR_CODES, PyftpError, RemoteError, TransportError,
                          error_for_code)

#: the sixteen codes issue 2 fixes for protocol v1, in the documented order
ISSUE_CODES = (
    "bad_request bad_frame auth_required auth_failed permission_denied not_found exists "
    "is_a_directory not_a_directory not_empty busy too_large no_space checksum_mismatch "
    "unsupported_version internal"
).split()


def test_the_table_holds_exactly_the_sixteen_codes_in_order():
    assert list(ERROR_CODES) == ISSUE_CODES


@pytest.mark.parametrize("code", ISSUE_CODES)
def test_every_code_round_trips(code):
    cls = ERROR_CODES[code]
    assert issubclass(cls, RemoteError) and cls.code == code
    exc = error_for_code(code, "what happened")
    assert type(exc) is cls
    assert exc.code == code and str(exc) == "what happened" and exc.message == "what happened"
    reply = exc.to_reply()
    assert reply == {"ok": False, "error": code, "message": "what happened"}
    again = error_for_code(reply["error"], reply["message"])
    assert type(again) is cls and again.message == exc.message


@pytest.mark.parametrize("code", ISSUE_CODES)
def test_an_empty_message_falls_back_to_the_title(code):
    exc = error_for_code(code)
    assert exc.message == ERROR_CODES[code].title != ""


def test_each_class_has_its_own_code():
    classes = list(ERROR_CODES.values())
    assert len(set(classes)) == len(classes) == 16


def test_unknown_code_keeps_its_text_and_code():
    exc = error_for_code("quota_exceeded", "over quota")
    assert type(exc) is RemoteError
    assert exc.code == "quota_exceeded" and exc.message == "over quota"
    assert exc.to_reply() == {"ok": False, "error": "quota_exceeded", "message": "over quota"}


@pytest.mark.parametrize("code", [None, 7, ["x"]])
def test_a_code_that_is_not_a_string_still_gives_a_readable_error(code):
    exc = error_for_code(code, None)
    assert type(exc) is RemoteError
    assert repr(code) in exc.message  # "server error None", not an empty line


def test_message_that_is_not_a_string_is_ignored():
    exc = error_for_code("not_found", {"odd": 1})
    assert type(exc) is errors.NotFoundError and exc.message == "not found"


def test_names_do_not_shadow_builtins():
    clash = sorted(n for n in errors.__all__ if hasattr(builtins, n))
    assert clash == []


def test_every_public_error_name_ends_in_error():
    names = [n for n in errors.__all__ if isinstance(getattr(errors, n), type)]
    assert names and all(n.endswith("Error") for n in names)


def test_the_tree():
    for cls in ERROR_CODES.values():
        assert issubclass(cls, PyftpError)
    assert issubclass(errors.ConnectError, TransportError)
    assert not issubclass(TransportError, RemoteError)
    assert not issubclass(errors.LocalError, RemoteError)
    # the package exposes the same classes
    import pyftp
    for name in ("NotFoundError", "ChecksumMismatchError", "error_for_code", "ConnectError"):
        assert getattr(pyftp, name) is getattr(errors, name)


def test_explicit_code_overrides_the_class_code():
    exc = RemoteError("x", code="busy")
    assert exc.to_reply()["error"] == "busy"
