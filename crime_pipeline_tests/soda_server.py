"""A small SODA-like HTTP server on 127.0.0.1 for tests: paging, `$where` on :updated_at, failures."""

from __future__ import annotations

import json
import re
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


class SodaServer:
    """Serves /resource/<dataset>.json. `fail_next` 500s, `malformed_offsets` answer garbage."""

    def __init__(self, rows: list[dict], dataset: str = "d6g9-xbgu"):
        self.rows, self.dataset = rows, dataset
        self.fail_next = 0
        self.malformed_offsets: set[int] = set()
        self.requests: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_GET(self):
                parsed = urllib.parse.urlparse(self.path)
                query = {k: v[0] for k, v in urllib.parse.parse_qs(parsed.query).items()}
                server.requests.append(query)
                if parsed.path != f"/resource/{server.dataset}.json":
                    return self._send(404, b'{"error": "not found"}')
                if server.fail_next:
                    server.fail_next -= 1
                    return self._send(500, b'{"error": "internal"}')
                offset, limit = int(query.get("$offset", 0)), int(query.get("$limit", 1000))
                if offset in server.malformed_offsets:
                    return self._send(200, b"<html>maintenance</html>")
                rows = server.rows
                match = re.fullmatch(r":updated_at > '(.+)'", query.get("$where", ""))
                if match:
                    rows = [r for r in rows if r[":updated_at"] > match.group(1)]
                rows = sorted(rows, key=lambda r: (r[":updated_at"], r[":id"]))
                self._send(200, json.dumps(rows[offset:offset + limit]).encode())

            def _send(self, status: int, body: bytes):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "SodaServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
