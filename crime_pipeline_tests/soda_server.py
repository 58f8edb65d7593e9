"""A small SODA-like HTTP server on 127.0.0.1 for tests: paging, `$where` on :updated_at, failures."""

from __future__ import annotations

import json
import re
import ssl
import tempfile
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def api_rows(n: int) -> list[dict]:
    """Rows shaped like the SODA API's JSON for dataset d6g9-xbgu (system fields included)."""
    types = ["Theft", "Assault", "Breaking & Entering", "Theft of Vehicle", "Robbery"]
    return [
        {
            ":id": f"row-{i:04d}",
            ":updated_at": f"2025-03-{1 + i // 4:02d}T{(i % 4) * 6:02d}:00:00.000Z",
            "case_number": f"25-{1000000 + i}",
            "incident_datetime": f"2025-02-{1 + i % 27:02d}T{(i * 5) % 24:02d}:15:00.000",
            "incident_type_primary": "LARCENY/THEFT",
            "parent_incident_type": types[i % len(types)],
            "latitude": f"{42.88 + (i % 9) * 0.005:.6f}",
            "longitude": f"{-78.85 - (i % 7) * 0.005:.6f}",
            "location": {"type": "Point", "coordinates": [-78.85, 42.88]},
            "address_1": f"{100 + i} Block MAIN ST",
            "zip_code": "14202",
        }
        for i in range(n)
    ]


# A self-signed certificate for 127.0.0.1 (test only: no client trusts it, which is the point).
UNTRUSTED_KEY_AND_CERT = """-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgzPcvI/o2eTrPEFbt
aWu4kBLz5MuEXjgVcl78iHD1czShRANCAARCXasPMAl6B117sKcmSJp/MNrN6sDN
I/0qmDCpy6ZzcdHyAYdqZDGXJDLWIO1CGjLxZ4/Mq0jSPsNXZyoM8eoW
-----END PRIVATE KEY-----
-----BEGIN CERTIFICATE-----
MIIBjjCCATagAwIBAgIUOa3NbqfBfuphy7iTJqgU8laEgm8wCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJMTI3LjAuMC4xMCAXDTI2MTEyOTEyMzEyOVoYDzIxMjYxMTA1
MTIzMTI5WjAUMRIwEAYDVQQDDAkxMjcuMC4wLjEwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAARCXasPMAl6B117sKcmSJp/MNrN6sDNI/0qmDCpy6ZzcdHyAYdqZDGX
JDLWIO1CGjLxZ4/Mq0jSPsNXZyoM8eoWo2QwYjAdBgNVHQ4EFgQUx/9vaWLfCYoD
3H3XrtBRDW+MrN8wHwYDVR0jBBgwFoAUx/9vaWLfCYoD3H3XrtBRDW+MrN8wDwYD
VR0TAQH/BAUwAwEB/zAPBgNVHREECDAGhwR/AAABMAoGCCqGSM49BAMCA0YAMEMC
IG9QJpqyTwc9XUC/0P4KmnG0AYQ23iKnBGRM06ire1SuAh8xec1V/z6VbBkcBoc8
6B1isVrPs+6Bzx8t5gnNXTu4
-----END CERTIFICATE-----
"""


class SodaServer:
    """Serves /resource/<dataset>.json like a SODA portal, or misbehaves on request.

    `fail_next` answers that many 500s, `malformed_offsets` answer HTML at those offsets, `status`
    answers every request with that HTTP status, `body` answers every request with those bytes.
    `hostile` picks one misbehaviour: "oversize" (an endless body without Content-Length),
    "oversize_declared" (a Content-Length over any limit), "endless" (every page full of new rows),
    "repeat" (ignores $offset), "drip" (one body byte per `drip_seconds`), "drip_headers" (the same
    for the status line), "drop" (closes half-way through the announced body), "redirect" (302 to
    `redirect_to` + the same path and query). Paths under /old/ always redirect here. `tls` serves
    HTTPS with a certificate nobody trusts. Every request's query and headers are recorded.
    """

    def __init__(self, rows: list[dict], dataset: str = "d6g9-xbgu", tls: bool = False):
        self.rows, self.dataset = rows, dataset
        self.fail_next = 0
        self.status: int | None = None
        self.malformed_offsets: set[int] = set()
        self.body: bytes | None = None
        self.hostile: str | None = None
        self.drip_seconds = 0.2
        self.redirect_to = ""
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.stopping = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_GET(self):
                try:
                    self._answer()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client hung up, as it should on a hostile answer

            def _answer(self):
                parsed = urllib.parse.urlparse(self.path)
                query = {k: v[0] for k, v in urllib.parse.parse_qs(parsed.query).items()}
                server.requests.append(query)
                server.headers.append(dict(self.headers))
                if server.hostile == "redirect" or parsed.path.startswith("/old/"):  # /old/...: moved here
                    self.send_response(302)
                    target = server.redirect_to if server.hostile == "redirect" else server.url
                    self.send_header("Location", target + self.path.removeprefix("/old"))
                    self.send_header("Content-Length", "0")
                    return self.end_headers()
                if parsed.path != f"/resource/{server.dataset}.json":
                    return self._send(404, b'{"error": "not found"}')
                if server.status:
                    return self._send(server.status, b'{"error": "no"}')
                if server.fail_next:
                    server.fail_next -= 1
                    return self._send(500, b'{"error": "internal"}')
                offset, limit = int(query.get("$offset", 0)), int(query.get("$limit", 1000))
                if server.body is not None:
                    return self._send(200, server.body)
                if offset in server.malformed_offsets:
                    return self._send(200, b"<html>maintenance</html>")
                if server.hostile in ("oversize", "oversize_declared", "drip", "drip_headers", "drop"):
                    return getattr(self, "_" + server.hostile)()
                if server.hostile == "endless":
                    rows = api_rows(offset + limit)[offset:]
                elif server.hostile == "repeat":
                    rows = server.rows[:limit]
                else:
                    rows = server.rows
                    match = re.fullmatch(r":updated_at > '(.+)'", query.get("$where", ""))
                    if match:
                        rows = [r for r in rows if r[":updated_at"] > match.group(1)]
                    rows = sorted(rows, key=lambda r: (r[":updated_at"], r[":id"]))[offset : offset + limit]
                self._send(200, json.dumps(rows).encode())

            def _send(self, status: int, body: bytes):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _oversize(self):  # no length: the body ends when the connection closes, or never
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"[")
                while not server.stopping.is_set():
                    self.wfile.write(b'{"case_number": "x"},' * 4096)

            def _oversize_declared(self):
                self.send_response(200)
                self.send_header("Content-Length", str(50 * 2**30))
                self.end_headers()
                self.wfile.write(b"[")

            def _drip(self):
                body = json.dumps(server.rows).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                for i in range(len(body)):
                    if server.stopping.wait(server.drip_seconds):
                        return
                    self.wfile.write(body[i : i + 1])
                    self.wfile.flush()

            def _drip_headers(self):  # the status line itself, one byte at a time
                for byte in b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n[]":
                    if server.stopping.wait(server.drip_seconds):
                        return
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()

            def _drop(self):
                body = json.dumps(server.rows).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls:  # HTTPS with UNTRUSTED_KEY_AND_CERT
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            with tempfile.NamedTemporaryFile("w", suffix=".pem") as pem:
                pem.write(UNTRUSTED_KEY_AND_CERT)
                pem.flush()
                context.load_cert_chain(pem.name)
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.httpd.server_address[1]}"
        # Polled every 50 ms, not the default 500: shutdown() waits for the next poll, in every test.
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> SodaServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
