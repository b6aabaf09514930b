"""A loopback HTTP file server for download tests: 127.0.0.1 only, optional Range support, scripted cut connections.

Not a test module; the download tests import it. Every request is logged as (path, Range header, status, bytes sent).
"""
import http.server
import re
import threading
import time


class LoopbackServer:
    """Serve `files` ({"/name": bytes}) on 127.0.0.1 at a free port. Use as a context manager.

    ranges: honour `Range: bytes=a-b | a- | -n` with 206 (else always 200 with the whole file).
    cuts: {"/name": {offset: n}}: the first response for that path whose body starts at byte `offset` sends only
        n body bytes, then closes the connection (a cut mid-file).
    cut_every: {"/name": n}: every response for that path sends at most n body bytes, then closes the connection.
    delay_s: seconds to wait before answering each request (a slow server).
    """

    def __init__(self, files: dict[str, bytes], ranges: bool = True, cuts: dict[str, dict[int, int]] | None = None,
                 cut_every: dict[str, int] | None = None, delay_s: float = 0.0):
        self.files, self.ranges, self.log = files, ranges, []
        self.cuts = {k: dict(v) for k, v in (cuts or {}).items()}
        self.cut_every, self.delay_s = dict(cut_every or {}), delay_s
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            timeout = 10

            def do_GET(self):
                time.sleep(server.delay_s)
                data = server.files.get(self.path)
                if data is None:
                    server.log.append((self.path, None, 404, 0))  # logged before answering: a client that has
                    self.send_error(404)                           # its answer finds the request in the log
                    return
                start, stop, status = 0, len(data), 200
                header = self.headers.get("Range")
                if header and server.ranges:
                    match = re.fullmatch(r"bytes=(\d*)-(\d*)", header)
                    first, last = match.groups()
                    if first == "":
                        start = max(0, len(data) - int(last))
                    else:
                        start, stop = int(first), min(len(data), int(last) + 1) if last else len(data)
                    if start >= len(data):
                        server.log.append((self.path, header, 416, 0))
                        self.send_error(416)
                        return
                    status = 206
                body = data[start:stop]
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{stop - 1}/{len(data)}")
                self.end_headers()
                cut = server.cuts.get(self.path, {}).pop(start, None)
                if cut is not None:
                    body = body[:cut]
                if self.path in server.cut_every:
                    body = body[:server.cut_every[self.path]]
                server.log.append((self.path, header, status, len(body)))
                self.wfile.write(body)
                self.close_connection = True

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self):
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    def bytes_sent(self, path: str) -> int:
        return sum(n for p, _, _, n in self.log if p == path)
