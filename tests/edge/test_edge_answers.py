"""How the forwarder reads the gateway's answer to a batch, per event (pure: real httpx.Response objects)."""

from __future__ import annotations

import httpx

from plantbridge.edge.answers import per_event_answers, retry_after_s

IDS = ["e1", "e2", "e3"]


def answer(body: object | None = None, *, text: str | None = None, headers: dict[str, str] | None = None,
           status: int = 200) -> httpx.Response:
    if text is not None:
        return httpx.Response(status, text=text, headers=headers)
    return httpx.Response(status, json=body, headers=headers)


def kinds(response: httpx.Response) -> dict[str, tuple[str, str]]:
    return {eid: (a.kind, a.status) for eid, a in per_event_answers(response, IDS).items()}


def test_gateway_batch_answer_matched_by_id_and_by_position() -> None:
    body = {"results": [
        {"http_status": 200, "event_id": "e1", "status": "accepted"},
        {"http_status": 409, "error": {"code": "conflict"}},  # refused before its id was read: by position
        {"http_status": 503, "error": {"code": "temporal_unavailable"}},
    ]}
    assert kinds(answer(body)) == {"e1": ("final", "accepted"), "e2": ("refused", "409"), "e3": ("transient", "503")}


def test_a_2xx_without_usable_answers_accepts_nothing() -> None:
    assert kinds(answer(text="<html>OK</html>")) == {}
    assert kinds(answer({})) == {}
    assert kinds(answer({"results": []})) == {}
    assert kinds(answer({"results": [{"event_id": "other", "status": "accepted"}]})) == {}
    # Two answers for three events: those without an id cannot be placed; e1 answered by id.
    partial = {"results": [{"event_id": "e1", "status": "duplicate"}, {"http_status": 422}]}
    assert kinds(answer(partial)) == {"e1": ("final", "duplicate")}
    assert kinds(answer([{"event_id": "e2", "status": "bogus"}])) == {}


def test_429_and_408_are_never_refusals() -> None:
    body = [{"event_id": "e1", "http_status": 429}, {"event_id": "e2", "http_status": 408},
            {"event_id": "e3", "http_status": 403}]
    assert kinds(answer(body)) == {"e1": ("transient", "429"), "e2": ("transient", "408"), "e3": ("refused", "403")}


def test_retry_after_seconds() -> None:
    assert retry_after_s(answer({}, headers={"Retry-After": "5"}, status=503), cap=300) == 5
    assert retry_after_s(answer({}, headers={"Retry-After": "9999"}, status=429), cap=300) == 300
    assert retry_after_s(answer({}, headers={"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"}), cap=300) == 0
    assert retry_after_s(answer({}), cap=300) == 0
