"""A real Chroma server for the tests: `chroma run` (from the chromadb package) on a free loopback port.

One server per test session (it starts in about 2 s); `chroma_url` hands each test the server emptied of every
collection, so tests never see each other's index. Import `chroma_server_fixture` and `chroma_url_fixture` into
a test module to use the fixtures `chroma_server` and `chroma_url`.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

START_TIMEOUT = 60.0  # a cold start on a loaded 2-core machine has taken 6 s


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def chroma_cli() -> str:
    """The `chroma` command beside this interpreter (the venv's), else on PATH."""
    beside = Path(sys.executable).parent / "chroma"
    found = str(beside) if beside.exists() else shutil.which("chroma")
    if found is None:
        pytest.fail("the `chroma` command (from the chromadb package) is not installed")
    return found


def stop(process: subprocess.Popen) -> None:
    """End a server the test started: asked first, killed if it does not stop within 10 s."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextlib.contextmanager
def running_server(path: Path) -> Iterator[str]:
    """`chroma run` on `path`, yielding its URL once its heartbeat answers; stopped on exit."""
    port = free_port()
    log = (path.parent / f"chroma-{port}.log").open("wb")
    process = subprocess.Popen(
        [chroma_cli(), "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                log.flush()
                output = (path.parent / f"chroma-{port}.log").read_text(errors="replace")[-2000:]
                pytest.fail(f"`chroma run` did not answer on {url}: {output}")
            time.sleep(0.1)
        yield url
    finally:
        stop(process)
        log.close()


@pytest.fixture(scope="session", name="chroma_server")
def chroma_server_fixture(tmp_path_factory) -> Iterator[str]:
    """The session's Chroma server URL."""
    with running_server(tmp_path_factory.mktemp("chroma-server") / "data") as url:
        yield url


def empty(url: str) -> None:
    """Delete every collection on the server: the next test starts from nothing."""
    from index.remote import connect

    client = connect(url)
    for collection in client.list_collections():
        client.delete_collection(collection.name)


def close_http_clients() -> None:
    """Close and forget chromadb's cached HTTP clients.

    chromadb keeps one client per server for the whole process and never closes its connections; a test that
    clears chromadb's cache (to reopen an embedded index as a new process would) would otherwise drop them
    open, and `filterwarnings = error` turns the ResourceWarning into a failure of whichever test runs then.
    """
    from chromadb.api.fastapi import FastAPI
    from chromadb.api.shared_system_client import SharedSystemClient

    for identifier, system in list(SharedSystemClient._identifier_to_system.items()):
        clients = [c for c in system._instances.values() if isinstance(c, FastAPI)]
        for client in clients:
            client._session.close()
        if clients:
            SharedSystemClient._identifier_to_system.pop(identifier, None)
            SharedSystemClient._identifier_to_refcount.pop(identifier, None)


@pytest.fixture(name="chroma_url")
def chroma_url_fixture(chroma_server) -> Iterator[str]:
    """The session's server, emptied for this test."""
    empty(chroma_server)
    yield chroma_server
    close_http_clients()
