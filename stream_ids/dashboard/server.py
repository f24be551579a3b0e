"""The dashboard's HTTP side: one page, its static files, and ``/api/state`` (JSON) it polls.

Standard library only (``ThreadingHTTPServer``); the page's JS and CSS ship inside the package
(``stream_ids/dashboard/static``), nothing is loaded from elsewhere.
"""

from __future__ import annotations

import logging
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any

import orjson

from stream_ids.dashboard.feed import KafkaFeed
from stream_ids.dashboard.state import DashboardState

log = logging.getLogger(__name__)

STATIC_TYPES = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
}
SECURITY_HEADERS = {
    # Everything is same-origin; records from Kafka are written into the page as text only.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _static(name: str) -> bytes:
    return resources.files("stream_ids.dashboard").joinpath("static", name).read_bytes()


def make_handler(state: DashboardState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "stream-ids-dashboard"

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("%s " + format, self.address_string(), *args)

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            for header, value in SECURITY_HEADERS.items():
                self.send_header(header, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/api/state":
                body = orjson.dumps(state.snapshot(), option=orjson.OPT_SERIALIZE_NUMPY)
                self._send(HTTPStatus.OK, body, "application/json")
            elif path == "/healthz":
                self._send(HTTPStatus.OK, b"ok\n", "text/plain; charset=utf-8")
            elif path in ("/", "/index.html"):
                self._send(HTTPStatus.OK, _static("index.html"), STATIC_TYPES["index.html"])
            elif path.startswith("/static/") and path[len("/static/") :] in STATIC_TYPES:
                name = path[len("/static/") :]
                self._send(HTTPStatus.OK, _static(name), STATIC_TYPES[name])
            else:
                self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain; charset=utf-8")

        do_HEAD = do_GET

    return Handler


class Dashboard:
    """The Kafka feed plus the HTTP server; ``start()`` returns at once, ``stop()`` ends both."""

    def __init__(
        self,
        kafka_config: dict[str, Any],
        *,
        verdicts_topic: str,
        alerts_topic: str,
        stats_topic: str,
        host: str = "127.0.0.1",
        port: int = 8088,
        lookback_s: float | None = 600.0,
        state: DashboardState | None = None,
    ) -> None:
        self.state = state or DashboardState()
        self.feed = KafkaFeed(
            kafka_config,
            self.state,
            verdicts_topic=verdicts_topic,
            alerts_topic=alerts_topic,
            stats_topic=stats_topic,
            lookback_s=lookback_s,
        )
        self.httpd = ThreadingHTTPServer((host, port), make_handler(self.state))
        self.httpd.daemon_threads = True
        self._http_thread = threading.Thread(
            target=self.httpd.serve_forever, name="dashboard-http", daemon=True
        )

    @property
    def url(self) -> str:
        address, port = self.httpd.server_address[:2]
        host = address.decode() if isinstance(address, bytes) else str(address)
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else host  # noqa: S104
        return f"http://{shown}:{port}/"

    def start(self) -> Dashboard:
        self.feed.start()
        self._http_thread.start()
        return self

    def stop(self) -> None:
        self.feed.stop()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.feed.join(timeout=10)

    def __enter__(self) -> Dashboard:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
