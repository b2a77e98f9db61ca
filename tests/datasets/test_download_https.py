"""The download's https rules against a real TLS server on loopback (a throwaway certificate for
127.0.0.1 and localhost, trusted through SSL_CERT_FILE): the token rides only to the trusted origin,
a redirect to another host over https is followed without it, and a step down to plain http is
refused before anything is sent there. (The end-to-end cases over signed Slack events are in
tests/listeners/test_download_token.py; the stand-in speaks plain http, so these need their own server.)"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bot.datasets.download import DownloadError, SlackFile, download, token_origins
from tests.listeners.test_download_token import NotSlack

TOKEN = "xoxb-https-test-token"
pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make a throwaway certificate")


class TlsSlack:
    """Answers /file/<n> by redirecting to redirects[n]; /data with the bytes. Records each request's path and token."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.redirects: list[str] = []
        self.seen: list[tuple[str, bool]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                outer.seen.append((self.path, self.headers.get("Authorization") == f"Bearer {TOKEN}"))
                if self.path.startswith("/file/"):
                    self.send_response(302)
                    self.send_header("Location", outer.redirects[int(self.path.rsplit("/", 1)[1])])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = b'{"messages": []}\n'
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def tls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TlsSlack]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True, timeout=60,
    )
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # ssl.create_default_context() trusts it
    server = TlsSlack(cert, key)
    yield server
    server.close()


def _file(url: str) -> SlackFile:
    return SlackFile("F1", "train.jsonl", 0, url, "U1")


def test_a_redirect_to_another_https_host_is_followed_without_the_token(tls: TlsSlack) -> None:
    origins = token_origins(f"https://127.0.0.1:{tls.port}/api/")  # 127.0.0.1:port trusted; localhost is another host
    tls.redirects = [f"https://localhost:{tls.port}/data"]
    got = download(TOKEN, _file(f"https://127.0.0.1:{tls.port}/file/0"), origins=origins)
    try:
        assert got.path.read_bytes() == b'{"messages": []}\n'
    finally:
        got.remove()
    assert tls.seen == [("/file/0", True), ("/data", False)]


def test_a_step_down_to_plain_http_is_refused(tls: TlsSlack) -> None:
    plain = NotSlack(b"should never be fetched")
    try:
        origins = token_origins(f"https://127.0.0.1:{tls.port}/api/")
        tls.redirects = [f"{plain.url}/data"]
        with pytest.raises(DownloadError, match="from https to plain http"):
            download(TOKEN, _file(f"https://127.0.0.1:{tls.port}/file/0"), origins=origins)
        assert plain.seen == []
    finally:
        plain.close()


def test_the_default_trusts_only_slacks_file_host(tls: TlsSlack) -> None:
    with pytest.raises(DownloadError, match="outside its file hosts"):
        download(TOKEN, _file(f"https://127.0.0.1:{tls.port}/file/0"))  # origins: files.slack.com only
    assert tls.seen == []


class ConnectProxy:
    """A plain-http egress proxy on loopback: answers CONNECT host:port (optionally only with the right
    Proxy-Authorization), then pipes bytes both ways. Records each request head it was sent."""

    def __init__(self, require_auth: str | None = None) -> None:
        self.heads: list[bytes] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.require_auth = require_auth
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(client,), daemon=True).start()

    def _handle(self, client: socket.socket) -> None:
        with client:
            head = b""
            while b"\r\n\r\n" not in head:
                got = client.recv(4096)
                if not got:
                    return
                head += got
            self.heads.append(head)
            method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
            if method != "CONNECT":
                client.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
                return
            if self.require_auth and f"proxy-authorization: {self.require_auth}".encode() not in head.lower():
                client.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")
                return
            host, port = target.rsplit(":", 1)
            with socket.create_connection((host, int(port)), timeout=10) as upstream:
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                pipe = threading.Thread(target=self._pipe, args=(upstream, client), daemon=True)
                pipe.start()
                self._pipe(client, upstream)
                pipe.join(timeout=10)

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[ConnectProxy]:
    for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    p = ConnectProxy()
    yield p
    p.close()


def test_a_download_through_an_http_proxy_tunnels_tls_and_the_proxy_never_sees_the_token(tls: TlsSlack, proxy: ConnectProxy, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy.port}")
    origins = token_origins(f"https://127.0.0.1:{tls.port}/api/")
    tls.redirects = [f"https://localhost:{tls.port}/data"]
    got = download(TOKEN, _file(f"https://127.0.0.1:{tls.port}/file/0"), origins=origins)
    try:
        assert got.path.read_bytes() == b'{"messages": []}\n'
    finally:
        got.remove()
    # Each hop went through the proxy as a CONNECT; the token rode inside TLS, to the trusted host only.
    assert [h.split(b"\r\n", 1)[0] for h in proxy.heads] == [f"CONNECT 127.0.0.1:{tls.port} HTTP/1.0".encode(), f"CONNECT localhost:{tls.port} HTTP/1.0".encode()]
    assert all(TOKEN.encode() not in h for h in proxy.heads)
    assert tls.seen == [("/file/0", True), ("/data", False)]


def test_proxy_credentials_go_to_the_proxy_only_and_an_https_proxy_is_refused_clearly(tls: TlsSlack, proxy: ConnectProxy, monkeypatch: pytest.MonkeyPatch) -> None:
    import base64

    proxy.require_auth = "basic " + base64.b64encode(b"egress:p@ss").decode().lower()
    origins = token_origins(f"https://127.0.0.1:{tls.port}/api/")
    tls.redirects = []
    monkeypatch.setenv("HTTPS_PROXY", f"http://egress:p%40ss@127.0.0.1:{proxy.port}")
    got = download(TOKEN, _file(f"https://127.0.0.1:{tls.port}/data"), origins=origins)
    got.remove()
    assert tls.seen == [("/data", True)] and len(proxy.heads) == 1

    monkeypatch.setenv("HTTPS_PROXY", f"http://egress:wrong@127.0.0.1:{proxy.port}")
    with pytest.raises(DownloadError, match="download from Slack failed"):
        download(TOKEN, _file(f"https://127.0.0.1:{tls.port}/data"), origins=origins)
    assert len(tls.seen) == 1  # nothing reached Slack past the refusing proxy

    monkeypatch.setenv("HTTPS_PROXY", f"https://127.0.0.1:{proxy.port}")
    with pytest.raises(DownloadError, match=r"https:// proxy; ftbot tunnels only through an http:// proxy"):
        download(TOKEN, _file(f"https://127.0.0.1:{tls.port}/data"), origins=origins)
    assert len(proxy.heads) == 2
