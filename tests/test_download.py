"""data.source=auto: shared copy, verified cache, download from a local HTTP server (ok, checksum
mismatch, interrupted, offline); no partial file is ever left behind."""

from __future__ import annotations

import hashlib
import http.server
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from stance.data.download import AUTO, RemoteFile, resolve_source
from stance.errors import StanceError

BODY = b'{"sentence": "x", "mention": "x", "from": 0, "to": 1, "polarity": 0, "id": "a"}\n' * 50


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        if self.path == "/ok.jsonl":
            self.send_response(200)
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY)
        elif self.path == "/tampered.jsonl":
            data = BODY.replace(b'"polarity": 0', b'"polarity": 1')
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        elif self.path == "/cut.jsonl":  # promises the whole file, sends half, hangs up
            self.send_response(200)
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY[: len(BODY) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        else:
            self.send_error(404)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _remote(url: str, body: bytes = BODY, name: str = "train.jsonl") -> RemoteFile:
    return RemoteFile(name, url, hashlib.sha256(body).hexdigest(), len(body))


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*")) if folder.exists() else []


def test_source_given_is_used_as_is(tmp_path: Path) -> None:
    assert resolve_source(str(tmp_path)) == str(tmp_path)


def test_shared_copy_is_preferred(tmp_path: Path, server: str) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "train.jsonl").write_bytes(BODY)
    got = resolve_source(AUTO, (_remote(f"{server}/ok.jsonl"),), shared=shared, cache=tmp_path / "cache")
    assert got == str(shared) and not (tmp_path / "cache").exists()


def test_download_once_then_cached(tmp_path: Path, server: str) -> None:
    cache = tmp_path / "cache"
    files = (_remote(f"{server}/ok.jsonl"),)
    assert resolve_source(AUTO, files, shared=tmp_path / "none", cache=cache) == str(cache)
    assert (cache / "train.jsonl").read_bytes() == BODY
    # second time: no network needed (a dead URL proves it)
    dead = (RemoteFile("train.jsonl", "http://127.0.0.1:9/x", files[0].sha256, files[0].size),)
    assert resolve_source(AUTO, dead, shared=tmp_path / "none", cache=cache) == str(cache)


def test_checksum_mismatch_keeps_nothing(tmp_path: Path, server: str) -> None:
    cache = tmp_path / "cache"
    with pytest.raises(StanceError, match="checksum mismatch"):
        resolve_source(AUTO, (_remote(f"{server}/tampered.jsonl"),), shared=tmp_path / "none", cache=cache)
    assert _leftovers(cache) == []


def test_interrupted_download_keeps_nothing(tmp_path: Path, server: str) -> None:
    cache = tmp_path / "cache"
    with pytest.raises(StanceError, match="download failed|checksum mismatch"):
        resolve_source(AUTO, (_remote(f"{server}/cut.jsonl"),), shared=tmp_path / "none", cache=cache)
    assert _leftovers(cache) == []


def test_offline_says_how_to_provide_the_files(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cache = tmp_path / "cache"
    with pytest.raises(StanceError) as err:
        resolve_source(AUTO, (_remote(f"http://127.0.0.1:{port}/ok.jsonl"),), shared=tmp_path / "none", cache=cache)
    message = str(err.value)
    assert "download failed" in message and "data.source=FOLDER" in message and "\n" not in message
    assert _leftovers(cache) == []


def test_downloads_off_is_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(StanceError, match="downloads are off"):
        resolve_source(
            AUTO, (_remote("http://127.0.0.1:9/x"),), shared=tmp_path / "a", cache=tmp_path / "b", allow_download=False
        )


def test_corrupt_cache_is_fetched_again(tmp_path: Path, server: str) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "train.jsonl").write_bytes(b"garbage\n")
    assert resolve_source(AUTO, (_remote(f"{server}/ok.jsonl"),), shared=tmp_path / "none", cache=cache) == str(cache)
    assert (cache / "train.jsonl").read_bytes() == BODY
