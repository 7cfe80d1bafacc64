"""A local HTTP server for dataset-download tests, and fixture files in the real formats.

``FixtureServer`` serves bytes on 127.0.0.1 with Range support and, per path, a queue of
misbehaviours for the next requests: "404", "drop" (half the body, then the connection
closes), "slow" (small pieces with pauses), "stall" (headers, then silence), "wrong"
(different bytes, same length), "big" (more bytes than expected), "norange" (ignores
Range), "redirect:URL". ``guard_loopback`` fails any connection beyond 127.0.0.1 (used by
the engine's and the GUI's download tests).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import re
import socket
import tarfile
import threading
import time
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

from engine.data.catalogue import CATALOGUE, RemoteFile

PIECE = 8192
LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def guard_loopback(monkeypatch) -> dict:
    """Make any connection or name lookup beyond 127.0.0.1 raise AssertionError and be
    recorded in ``state["attempts"]`` (the caller asserts it stays empty); with
    ``state["block_all"]`` set, loopback is refused too (to prove a cache hit needs no
    network). Proxies from the environment are cleared."""
    state: dict = {"block_all": False, "attempts": []}
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def check(host: object) -> None:
        if state["block_all"] or str(host) not in LOOPBACK:
            state["attempts"].append(host)
            raise AssertionError(f"network access to {host!r} in a test")

    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            check(address[0])
        return real_connect(self, address)

    def connect_ex(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            check(address[0])
        return real_connect_ex(self, address)

    def getaddrinfo(host, *args, **kwargs):
        check(host.decode() if isinstance(host, bytes) else host)
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy",
                "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    return state


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):  # the client hung up: expected here
        pass


class FixtureServer:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.plans: dict[str, list[str]] = {}
        self.log: list[tuple[str, str | None, str]] = []   # (path, Range header, mode)
        self.slow_pause = 0.01
        self.stall_s = 2.0
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                outer._serve(self)

        self.httpd = _Server(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path}"

    def plan(self, path: str, *modes: str) -> None:
        """Misbehave on the next len(modes) requests for ``path``, in this order."""
        with self._lock:
            self.plans.setdefault(path, []).extend(modes)

    def requests(self, path: str | None = None) -> list[tuple[str, str | None, str]]:
        with self._lock:
            return [r for r in self.log if path is None or r[0] == path]

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # ----- serving --------------------------------------------------------------------------
    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        path = h.path.lstrip("/")
        with self._lock:
            queue = self.plans.get(path) or []
            mode = queue.pop(0) if queue else "ok"
            self.log.append((path, h.headers.get("Range"), mode))
        if mode.startswith("redirect:"):
            h.send_response(302)
            h.send_header("Location", mode.partition(":")[2])
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        if mode == "404" or path not in self.files:
            h.send_error(404, "Not Found")
            return
        body = self.files[path]
        if mode == "wrong":
            body = bytes(255 - b for b in body[:64]) + body[64:]
        elif mode == "big":
            body = body + b"\0" * 4096
        start = 0
        m = re.fullmatch(r"bytes=(\d+)-", h.headers.get("Range") or "")
        if m and mode != "norange":
            start = int(m[1])
            if start >= len(body):
                h.send_response(416)
                h.send_header("Content-Range", f"bytes */{len(body)}")
                h.send_header("Content-Length", "0")
                h.end_headers()
                return
            h.send_response(206)
            h.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            h.send_response(200)
        h.send_header("Content-Length", str(len(body) - start))
        h.end_headers()
        rest = body[start:]
        try:
            if mode == "stall":
                time.sleep(self.stall_s)
            if mode == "drop":
                h.wfile.write(rest[: len(rest) // 2])
                h.wfile.flush()
                h.connection.shutdown(socket.SHUT_RDWR)
                return
            step = PIECE if mode == "slow" else len(rest) or 1
            for i in range(0, len(rest), step):
                h.wfile.write(rest[i:i + step])
                h.wfile.flush()
                if mode == "slow":
                    time.sleep(self.slow_pause)
        except OSError:
            pass  # the client went away (cancel, timeout)


def closed_port_url(path: str = "x") -> str:
    """An address on 127.0.0.1 where nothing listens (connection refused)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}/{path}"


# ----- fixture files in the real formats ----------------------------------------------------
def idx_gz(arr: np.ndarray) -> bytes:
    """An IDX file (uint8), gzipped as the published MNIST files are."""
    head = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return gzip.compress(head + np.ascontiguousarray(arr, np.uint8).tobytes(), mtime=0)


def mnist_like(n_train: int = 300, n_test: int = 50, seed: int = 0):
    """({published file name: bytes}, arrays) of a tiny MNIST-format dataset."""
    rng = np.random.default_rng(seed)
    arrays = {"x": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
              "y": rng.integers(0, 10, n_train, dtype=np.uint8),
              "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
              "y_test": rng.integers(0, 10, n_test, dtype=np.uint8)}
    files = {"train-images-idx3-ubyte.gz": idx_gz(arrays["x"]),
             "train-labels-idx1-ubyte.gz": idx_gz(arrays["y"]),
             "t10k-images-idx3-ubyte.gz": idx_gz(arrays["x_test"]),
             "t10k-labels-idx1-ubyte.gz": idx_gz(arrays["y_test"])}
    return files, arrays


def cifar_binary_targz(per_batch: int = 4, n_test: int = 3, seed: int = 0, python: bool = False,
                       meta: bytes | None = None):
    """(cifar-10-binary.tar.gz bytes, {batch name: (labels, images (N, 3, 32, 32))})."""
    rng = np.random.default_rng(seed)
    top = "cifar-10-batches-py" if python else "cifar-10-batches-bin"
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    parts = {}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name in names:
            n = n_test if name == "test_batch" else per_batch
            labels = rng.integers(0, 10, n, dtype=np.uint8)
            images = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
            parts[name] = (labels, images)
            records = np.concatenate([labels[:, None], images.reshape(n, -1)], axis=1)
            add(name if python else f"{name}.bin", records.tobytes())
        add("batches.meta.txt", meta if meta is not None else
            b"airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n")
        add("readme.html", b"<html></html>")
    return buf.getvalue(), parts


def serve_dataset(monkeypatch, server: FixtureServer, name: str, files: dict[str, bytes],
                  mirrors: tuple[str, ...] = ("m1",)) -> None:
    """Point the catalogue entry ``name`` at ``server``: each file under every mirror
    prefix (only the first holds the bytes unless they are added), with checksums of the
    fixture bytes."""
    real = CATALOGUE[name]
    specs = []
    for f in real.files:
        data = files[f.name]
        server.files[f"{mirrors[0]}/{name}/{f.name}"] = data
        specs.append(RemoteFile(f.name, tuple(server.url(f"{m}/{name}/{f.name}") for m in mirrors),
                                len(data), hashlib.sha256(data).hexdigest(),
                                hashlib.md5(data).hexdigest()))
    monkeypatch.setitem(CATALOGUE, name, replace(real, files=tuple(specs)))
