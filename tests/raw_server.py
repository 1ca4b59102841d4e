"""A raw local HTTP server for answers the fake provider server does not script: any status,
headers and body bytes, sent to whatever request arrives (a proxy's error body inside a stream, a
complete JSON answer to a stream request, a captive portal's HTML page)."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from failover_client.testing._server import PROTOCOLS


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes

    def do_POST(self):  # noqa: N802 (the name http.server calls)
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length)
        server = self.server.owner
        server.requests.append((self.path, dict(self.headers), body))
        status, headers, payload = server.reply
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


class RawServer:
    """Answers every request with ``reply`` (status, headers, body); set it with :meth:`answer`."""

    def __init__(self):
        self.requests = []
        self.reply = (200, {}, b"")
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.owner = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(1)

    @property
    def url(self):
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def base_url(self, name, protocol):
        """The base URL a client of ``protocol`` uses, as on the fake provider server."""
        return PROTOCOLS[protocol].base_url(self.url, name)

    def answer(self, status, body, content_type="application/json", **headers):
        payload = body if isinstance(body, bytes) else body.encode()
        self.reply = (status, {"content-type": content_type, **headers}, payload)
