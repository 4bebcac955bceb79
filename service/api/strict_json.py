"""Request bodies parsed as JSON (RFC 8259), not as Python's json module allows.

Python's parser accepts `NaN`, `Infinity` and `1e400` (a float overflowing to inf), which no JSON
client should send and no number field of this API can mean; FastAPI's 422 then tried to echo
the value and could not serialise it (a 500). It also keeps the last of duplicate keys silently,
so `{"beta": 0.1, "beta": 0.9}` meant whatever the sender's library happened to write last.
A `\\ud800` escape with no partner is valid JSON but no Unicode text: it decodes to a lone
surrogate, which nothing can encode, so echoing it in a 422 or storing it failed (a 500).
Each of these is now a 422 that names the field, and a body nested too deeply to parse is a 400
that says so.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import HTTPException, Request, Response
from fastapi.routing import APIRoute

from detectors.embedding import lone_surrogate

MAX_INT_DIGITS = 64  # no field of this API takes an integer anywhere near 10^64


class _Rejected:
    """Stands where a value the API refuses was in the body, until its path is known."""

    def __init__(self, message: str, kind: str) -> None:
        self.message = message
        self.kind = kind


class _Object(dict[str, Any]):
    duplicates: list[str]


def _constant(name: str) -> _Rejected:
    return _Rejected(f"{name} is not a JSON number: send a finite number", "finite_number")


def _float(text: str) -> float | _Rejected:
    value = float(text)
    if math.isfinite(value):
        return value
    return _Rejected(f"{text} overflows a 64-bit float: send a finite number", "finite_number")


def _int(text: str) -> int | _Rejected:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        return _Rejected(
            f"an integer of {len(text.lstrip('-'))} digits is out of range for every field",
            "int_too_large",
        )
    return int(text)


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = _Object()
    out.duplicates = []
    for key, value in pairs:
        if key in out:
            out.duplicates.append(key)
        out[key] = value
    return out


def _first_problem(body: Any) -> tuple[list[str | int], str, str] | None:
    """(location, message, type) of the first refused value, depth first; iterative, so a
    deeply nested body cannot exhaust the stack here."""
    stack: list[tuple[list[str | int], Any]] = [(["body"], body)]
    while stack:
        loc, value = stack.pop()
        if isinstance(value, _Rejected):
            return loc, value.message, value.kind
        if isinstance(value, str) and (why := lone_surrogate(value)) is not None:
            return loc, why, "unicode_surrogate"
        if isinstance(value, _Object) and value.duplicates:
            key = value.duplicates[0]
            return [*loc, key], f"key {key!r} appears more than once: send it once", "duplicate_key"
        if isinstance(value, dict):
            for key in value:
                if (why := lone_surrogate(key)) is not None:
                    # The key itself cannot be echoed: name its position among the keys.
                    index = list(value).index(key)
                    return [*loc, f"key #{index + 1}"], f"a key holds {why}", "unicode_surrogate"
            stack.extend((([*loc, k], v) for k, v in reversed(value.items())))
        elif isinstance(value, list):
            stack.extend((([*loc, i], v) for i, v in reversed(list(enumerate(value)))))
    return None


def parse_json_body(raw: bytes) -> Any:
    """The body as JSON, or an HTTPException: 422 naming the refused value's field, 400 for a
    body nested too deeply to parse. Malformed JSON raises json.JSONDecodeError (FastAPI's 422)."""
    try:
        body = json.loads(
            raw,
            parse_constant=_constant,
            parse_float=_float,
            parse_int=_int,
            object_pairs_hook=_pairs,
        )
    except RecursionError:
        raise HTTPException(
            400, "the JSON body is nested too deeply to parse: flatten the request"
        ) from None
    problem = _first_problem(body)
    if problem is not None:
        loc, message, kind = problem
        raise HTTPException(422, [{"loc": loc, "msg": message, "type": kind}])
    return body


class _StrictJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = parse_json_body(await self.body())
        return self._json


class StrictJSONRoute(APIRoute):
    """An APIRoute whose JSON bodies go through `parse_json_body` (FastAPI's documented way to
    swap the request class: a custom route class)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            return await handler(_StrictJSONRequest(request.scope, request.receive))

        return strict
