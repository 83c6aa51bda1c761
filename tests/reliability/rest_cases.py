"""Malformed HTTP requests for the gateway: bad JSON, huge bodies, odd encodings, bad headers."""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterator

from tests.reliability.raw_http import build, chunked

# Routes that read a body, with a body they would accept.
BODY_ROUTES = (
    ("PUT", "/api/v1/cache/keys/fuzz:body", {"value": {"a": 1}, "ttlSeconds": 60}),
    ("POST", "/api/v1/cache/mget", {"keys": ["fuzz:body"]}),
    ("POST", "/api/v1/cache/mset", {"items": [{"key": "fuzz:m", "value": [1], "ttlSeconds": 60}]}),
    ("POST", "/api/v1/sectors/cache/warm", {"symbols": ["XLK"]}),
    ("POST", "/api/v1/sectors/batch", {"sectors": [{"symbol": "XLK", "price": 10.5}]}),
)

BAD_JSON = (
    b"",
    b"{",
    b"[1, 2",
    b'{"value": }',
    b"null",
    b'"a string"',
    b"12345",
    b"[]",
    b'{"value": NaN}',
    b'{"value": Infinity, "ttlSeconds": -Infinity}',
    b'{"value": 1e400}',
    b'{"ttlSeconds": "sixty", "value": 1}',
    b'{"ttlSeconds": 1e30, "value": 1}',
    b'{"keys": "fuzz:body"}',
    b'{"keys": [1, null, {}]}',
    b'{"items": [{"key": null}]}',
    b'{"sectors": [{"symbol": 7, "price": "x"}]}',
    b'{"unknownField": 1, "value": 2}',
    b'{"value": 1, "value": 2}',
    b"\x00\x01\x02",
    b"[" * 100_000 + b"]" * 100_000,
    b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    b'{"value": "' + b"\\ud800" + b'"}',
    json.dumps({"value": "x" * 1_500_000}).encode(),
)

AUTH = "Authorization: Bearer {token}"


def body_cases(token: str, max_body: int) -> Iterator[tuple[str, bytes]]:
    """(name, raw request) pairs over every body route."""
    auth = AUTH.format(token=token)
    json_type = "Content-Type: application/json"
    for method, path, good in BODY_ROUTES:
        name = f"{method} {path}"
        valid = json.dumps(good).encode()
        for index, bad in enumerate(BAD_JSON):
            yield f"{name} bad JSON #{index}", build(method, path, bad, [json_type, auth])
        text = json.dumps(good, ensure_ascii=False)
        encodings: list[tuple[str, bytes, list[str]]] = [
            ("latin-1", text.replace("XLK", "XLKé").encode("latin-1"), ["charset=latin-1"]),
            ("utf-16", text.encode("utf-16"), ["charset=utf-16"]),
            ("utf-16 no charset", text.encode("utf-16-le"), []),
            ("utf-8 BOM", b"\xef\xbb\xbf" + valid, []),
            ("invalid utf-8", valid[:-1] + b'"\xff\xfe\xc0\x80"' + valid[-1:], []),
            ("text/plain", valid, []),
        ]
        for label, payload, params in encodings:
            content_type = "text/plain" if label == "text/plain" else "application/json"
            header = "; ".join([f"Content-Type: {content_type}", *params])
            yield f"{name} {label}", build(method, path, payload, [header, auth])
        compressed = {
            "gzip": gzip.compress(valid),
            "deflate": zlib.compress(valid),
            "br (not brotli)": valid,
            "gzip (not gzip)": valid,
            "gzip bomb": gzip.compress(b'{"value": "' + b"a" * (max_body * 20) + b'"}'),
            "identity": valid,
            "x-unknown": valid,
        }
        for label, payload in compressed.items():
            encoding = label.split(" ")[0]
            headers = [json_type, auth, f"Content-Encoding: {encoding}"]
            yield f"{name} Content-Encoding {label}", build(method, path, payload, headers)
        huge = b'{"value": "' + b"h" * (max_body + 1) + b'"}'
        yield f"{name} huge body", build(method, path, huge, [json_type, auth])
        yield (
            f"{name} huge chunked body",
            build(
                method, path, chunked(huge), [json_type, auth, "Transfer-Encoding: chunked"]
            ).replace(b"Content-Length", b"X-Ignored", 1),
        )
        yield (
            f"{name} Content-Length larger than the limit, short body",
            build(
                method,
                path,
                valid,
                [json_type, auth, f"Content-Length: {max_body * 10}"],
                length=False,
            ),
        )


def header_cases(token: str) -> Iterator[tuple[str, bytes]]:
    """Header injection, huge and odd headers, odd paths, on a read and a write route."""
    auth = AUTH.format(token=token)
    for method, path in (
        ("GET", "/api/v1/cache/keys/fuzz:h"),
        ("DELETE", "/api/v1/cache/keys/fuzz:h"),
    ):
        name = f"{method} {path}"
        variants: dict[str, list[str | bytes]] = {
            "CR in a value": [b"X-Test: a\rInjected: yes"],
            "LF in a value": [b"X-Test: a\nInjected: yes"],
            "CRLF in Authorization": [f"Authorization: Bearer {token}\r\nX-Admin: 1".encode()],
            "NUL in a value": [b"X-Test: a\x00b"],
            "obs-fold": [b"X-Test: a", b" folded"],
            "non-ASCII value": ["X-Test: \u00e9t\u00e9".encode()],
            "huge header": [b"X-Big: " + b"a" * 200_000],
            "many headers": [f"X-H{i}: v".encode() for i in range(2_000)],
            "huge Authorization": [b"Authorization: Bearer " + b"t" * 100_000],
            "Authorization without scheme": [token.encode()],
            "two Authorization headers": [b"Authorization: Bearer wrong", auth.encode()],
            "Grpc-Metadata with CRLF": [b"Grpc-Metadata-x: a\r\nb: c"],
            "Grpc-Metadata non-ASCII": ["Grpc-Metadata-x: \u00e9".encode()],
            "Grpc-Metadata binary key": [b"Grpc-Metadata-x-bin: AAAA", auth.encode()],
            "Grpc-Metadata reserved key": [b"Grpc-Metadata-grpc-timeout: 1S", auth.encode()],
            "Grpc-Timeout garbage": [b"Grpc-Timeout: forever", auth.encode()],
            "Grpc-Timeout huge": [b"Grpc-Timeout: 99999999H", auth.encode()],
            "Grpc-Timeout zero": [b"Grpc-Timeout: 0n", auth.encode()],
            "space before colon": [b"X-Test : a", auth.encode()],
            "header without colon": [b"NoColonHere", auth.encode()],
            "Content-Length negative": [b"Content-Length: -1", auth.encode()],
            "Content-Length twice": [b"Content-Length: 0", b"Content-Length: 5", auth.encode()],
            "Transfer-Encoding bogus": [b"Transfer-Encoding: bogus", auth.encode()],
        }
        for label, headers in variants.items():
            yield f"{name} {label}", build(method, path, None, headers)
    paths = {
        "NUL in the path": "/api/v1/cache/keys/fuzz:%00",
        "invalid UTF-8 in the path": "/api/v1/cache/keys/fuzz:%ff%fe",
        "overlong UTF-8": "/api/v1/cache/keys/fuzz:%c0%af",
        "encoded slash": "/api/v1/cache/keys/fuzz:a%2Fb",
        "dot segments": "/api/v1/cache/keys/../../../etc/passwd",
        "double slash": "//api//v1/cache/keys/fuzz:a",
        "very long path": "/api/v1/cache/keys/fuzz:" + "a" * 100_000,
        "long key": "/api/v1/cache/keys/fuzz:" + "a" * 5_000,
        "raw non-ASCII": "/api/v1/cache/keys/fuzz:\u00e9",
        "query soup": "/api/v1/market/quotes?symbols=&symbols=,,,&symbols=%ff&days=-1",
        "huge symbol list": "/api/v1/market/quotes?symbols=" + ",".join(["AAPL"] * 5_000),
        "absolute-form target": "http://evil.example/api/v1/cache/health",
        "asterisk target": "*",
        "fragment": "/api/v1/cache/health#frag",
    }
    for label, target in paths.items():
        yield f"GET {label}", build("GET", target.encode("utf-8").decode("latin-1"), None, [auth])
    yield "request line garbage", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64
    yield "HTTP/2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
    yield "lowercase method", build("get", "/api/v1/cache/health")
    yield "unknown method", build("BREW", "/api/v1/cache/health")
    yield "HTTP/0.9", b"GET /api/v1/cache/health\r\n\r\n"
    yield "HTTP/9.9", b"GET /api/v1/cache/health HTTP/9.9\r\nHost: x\r\nConnection: close\r\n\r\n"
