"""A response body is decoded with the garbage collector paused: the collector's state is
restored whatever happens (a body that is not JSON, threads decoding at once), and the body
decodes to what ``requests`` gives."""

from __future__ import annotations

import gc
import threading

import pytest
import requests
from requests.utils import get_encoding_from_headers

from itcrosswalk.core.http import json_body


def response(
    body: bytes, content_type: str = "application/json;charset=UTF-8"
) -> requests.Response:
    made = requests.Response()
    made._content = body
    made.status_code = 200
    made.headers["Content-Type"] = content_type
    made.encoding = get_encoding_from_headers(made.headers)
    return made


@pytest.fixture
def collector() -> None:
    was = gc.isenabled()
    yield
    (gc.enable if was else gc.disable)()


BODIES = [
    b'{"result": [{"a": {"value": "1", "display_value": "x"}}]}',
    '{"result": ["caf\u00e9", "\\ud83d\\ude00", "\\u0000"]}'.encode(),
    b'\xef\xbb\xbf{"result": []}',  # a byte order mark
    '{"result": ["名前"]}'.encode("utf-16"),
]


@pytest.mark.parametrize("body", BODIES)
def test_a_body_decodes_as_requests_decodes_it(body: bytes, collector: None) -> None:
    if body.startswith(b"\xef\xbb\xbf"):
        assert json_body(response(body)) == {"result": []}
    elif body.startswith(b"\xff\xfe"):  # UTF-16 under a UTF-8 label: read, where requests fails
        assert json_body(response(body)) == {"result": ["名前"]}
    else:
        assert json_body(response(body)) == response(body).json()
    assert gc.isenabled()


def test_a_declared_charset_other_than_utf8_is_honoured(collector: None) -> None:
    body = '{"result": ["caf\u00e9"]}'.encode("latin-1")
    assert json_body(response(body, "application/json; charset=ISO-8859-1")) == {"result": ["café"]}


@pytest.mark.parametrize("body", [b'{"result": [', b"<html>sign in</html>", b"\xff\xfe\xfa"])
def test_a_body_that_is_not_json_raises_and_the_collector_is_back_on(
    body: bytes, collector: None
) -> None:
    gc.enable()
    with pytest.raises(ValueError):
        json_body(response(body))
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off(collector: None) -> None:
    gc.disable()
    assert json_body(response(b'{"result": []}')) == {"result": []}
    assert not gc.isenabled()


def test_threads_decoding_at_once_leave_the_collector_on(collector: None) -> None:
    gc.enable()
    body = b'{"result": [' + b",".join([b'{"v": {"value": "1"}}'] * 20000) + b"]}"
    start = threading.Barrier(4)
    failures: list[BaseException] = []

    def decode() -> None:
        try:
            start.wait()
            for _ in range(5):
                assert len(json_body(response(body))["result"]) == 20000
        except BaseException as exc:  # pragma: no cover - reported below
            failures.append(exc)

    threads = [threading.Thread(target=decode) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    assert gc.isenabled()


# Each decodes to exactly what json.loads makes of it: pydantic-core's parser where it can, the
# standard library where that parser refuses (a lone surrogate, a byte order mark, nesting past
# its limit), and the same error for what is not JSON.
EDGES = [
    b'{"a": "\\ud83d", "b": "\\ud83d\\ude00", "c": "\\udc00x"}',  # lone surrogates, a pair
    b'{"a": 1, "a": 2}',  # a repeated key: the last one
    b"[12345678901234567890123456789, -0, -0.0, 1e400, -1e400, 1e-400, NaN, Infinity]",
    b"[0.1, 2.2250738585072014e-308, 5e-324, 1.7976931348623157e308, 1E5, 123.456e-7]",
    b"[" * 300 + b"]" * 300,  # deeper than pydantic-core goes
    b'\xef\xbb\xbf{"result": []}',
    b'{"t": "tab\\there", "u": "\\u00e9\\u0000", "s": "caf\xc3\xa9"}',
]


@pytest.mark.parametrize("body", EDGES)
def test_json_loads_gives_what_the_standard_library_gives(body: bytes) -> None:
    import json

    from itcrosswalk.core.http import json_loads

    # Their JSON text tells apart what == does not: 1 and 1.0, 0.0 and -0.0, NaN, key order.
    assert json.dumps(json_loads(body)) == json.dumps(json.loads(body))


@pytest.mark.parametrize("body", [b'"a\tb"', b"[1,]", b'{"a": 1} x', b"01", b"\xff"])
def test_json_loads_refuses_what_the_standard_library_refuses(body: bytes) -> None:
    import json

    from itcrosswalk.core.http import json_loads

    with pytest.raises(ValueError) as ours:
        json_loads(body)
    with pytest.raises(ValueError) as theirs:
        json.loads(body)
    assert type(ours.value) is type(theirs.value)


def test_json_loads_parses_with_pydantic_core_and_leaves_only_what_it_refuses_to_json(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import json

    from itcrosswalk.core.http import json_loads

    given: list[bytes] = []  # the bodies the standard library was asked to decode
    loads = json.loads
    monkeypatch.setattr(json, "loads", lambda content: given.append(content) or loads(content))
    assert json_loads(b'{"result": [{"a": {"value": "1"}}]}') == {"result": [{"a": {"value": "1"}}]}
    assert given == []
    lone = b'{"result": ["\\ud83d"]}'
    assert json_loads(lone) == {"result": ["\ud83d"]}
    assert given == [lone]
