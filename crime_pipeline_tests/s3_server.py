"""A real S3-compatible server for the tests: moto in server mode, on 127.0.0.1, in its own process.

`python -m crime_pipeline_tests.s3_server` prints `port <n>` once it listens and serves until
killed. Requests are handled one at a time (a lock around the app): moto checks a conditional
PUT's ETag and then stores the object in two steps, which real S3 does atomically, so without the
lock two concurrent conditional PUTs could both succeed against moto and no test would be testing
the ledger.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_SESSION_TOKEN": "testing",
}


def serve() -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    app = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def serialised(environ, start_response):
        with lock:
            return list(app(environ, start_response))

    server = make_server("127.0.0.1", 0, serialised, threaded=True, request_handler=MotoRequestHandler)
    print(f"port {server.server_address[1]}", flush=True)
    server.serve_forever()


@contextmanager
def s3_server() -> Iterator[str]:
    """Start the server in a subprocess; yield its endpoint URL; stop it."""
    process = subprocess.Popen(
        [sys.executable, "-m", "crime_pipeline_tests.s3_server"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, **CREDENTIALS},
    )
    try:
        line = process.stdout.readline()
        if not line.startswith("port "):
            raise RuntimeError(f"the S3 test server did not start (it printed {line!r})")
        yield f"http://127.0.0.1:{int(line.split()[1])}"
    finally:
        process.terminate()
        process.wait(timeout=10)


if __name__ == "__main__":
    serve()
