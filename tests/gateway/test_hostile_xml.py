"""Hostile XML at the IDoc intake: billion laughs, external entities (file and http), a DTD behind a
padded prolog and a DTD in a UTF-16 body. Each is refused by the parser itself (defusedxml: no DTD,
no entity, no external reference, at any position and in any encoding), answered 422 and kept raw as
a dead letter; nothing is expanded and nothing is fetched."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from plantbridge.gateway.idoc_loipro import IdocError, parse_loipro
from plantbridge.gateway.openapi_examples import IDOC_EXAMPLE
from plantbridge_devtools.temporal_server import free_port
from tests.gateway.conftest import Gateway

SECRET = "s3cr3t-marker-7f1c"
BODY = IDOC_EXAMPLE.split("?>", 1)[1]  # the document without its XML declaration
LAUGHS = "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10))
BOMB_DTD = f'<!DOCTYPE LOIPRO05 [<!ENTITY lol0 "lol">{LAUGHS}]>'


def with_entity_in_order(body: str, entity: str) -> str:
    """The valid sample IDoc with its material replaced by an entity reference."""
    return body.replace("<MATNR>FG-1000</MATNR>", f"<MATNR>&{entity};</MATNR>", 1)


class Fetches:
    """A loopback HTTP server that counts what is fetched from it (an external entity's target)."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.paths.append(self.path)
                data = SECRET.encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def fetches() -> Iterator[Fetches]:
    f = Fetches()
    t = threading.Thread(target=f.server.serve_forever, daemon=True)
    t.start()
    yield f
    f.server.shutdown()
    f.server.server_close()


def hostile_bodies(secret_file: Path, fetch_url: str) -> dict[str, bytes]:
    padding = "<!-- " + "pad " * 600 + "-->\n" + " " * 3000 + "\n"  # > 4 KB of comments and whitespace
    assert len(padding) > 4096
    return {
        "billion_laughs": (f'<?xml version="1.0"?>{BOMB_DTD}' + with_entity_in_order(BODY, "lol9")).encode(),
        "external_file": (f'<?xml version="1.0"?><!DOCTYPE LOIPRO05 [<!ENTITY x SYSTEM "{secret_file.as_uri()}">]>'
                          + with_entity_in_order(BODY, "x")).encode(),
        "external_http": (f'<?xml version="1.0"?><!DOCTYPE LOIPRO05 [<!ENTITY x SYSTEM "{fetch_url}/x">]>'
                          + with_entity_in_order(BODY, "x")).encode(),
        "external_dtd": (f'<?xml version="1.0"?><!DOCTYPE LOIPRO05 SYSTEM "{fetch_url}/dtd">' + BODY).encode(),
        "padded_prolog": (f'<?xml version="1.0" encoding="UTF-8"?>\n{padding}{BOMB_DTD}'
                          + with_entity_in_order(BODY, "lol9")).encode(),
        "utf16_dtd": (f'<?xml version="1.0" encoding="UTF-16"?>{BOMB_DTD}'
                      + with_entity_in_order(BODY, "lol9")).encode("utf-16"),
    }


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "secret.txt"
    path.write_text(SECRET)
    return path


def test_parser_refuses_every_hostile_form(secret_file: Path, fetches: Fetches) -> None:
    for name, xml in hostile_bodies(secret_file, fetches.url).items():
        with pytest.raises(IdocError, match="must not contain a DOCTYPE") as err:
            parse_loipro(xml)
        assert SECRET not in str(err.value) and "lollol" not in str(err.value), name
    assert fetches.paths == []  # no external entity or DTD was fetched


def test_any_encoding_of_a_clean_idoc_is_read() -> None:
    utf16 = ('<?xml version="1.0" encoding="UTF-16"?>' + BODY).encode("utf-16")
    padded = ('<?xml version="1.0"?>\n<!-- ' + "pad " * 2000 + "-->\n" + BODY).encode()
    for xml in (utf16, padded):
        [order] = parse_loipro(xml)
        assert order.number == "1004157" and order.material == "FG-1000"


async def test_gateway_answers_422_and_keeps_the_raw_body(gateway: Gateway, http: httpx.AsyncClient,
                                                          secret_file: Path, fetches: Fetches) -> None:
    h = {**gateway.auth("erp_all"), "Content-Type": "application/xml"}
    for name, xml in hostile_bodies(secret_file, fetches.url).items():
        r = await http.post("/v1/erp/sap/idoc", content=xml, headers=h)
        assert r.status_code == 422, (name, r.text)
        assert r.json()["error"]["code"] == "invalid_idoc", name
        assert SECRET not in r.text and "lollol" not in r.text and len(r.content) < 2000, name
        msg = await gateway.intake.inbox.get(int(r.headers["X-Inbox-Id"]))
        assert msg is not None and msg.status == "dead" and msg.body == xml, name  # the raw body, as sent
        assert SECRET not in str(msg.answer) and "lollol" not in str(msg.answer), name
    assert fetches.paths == []
