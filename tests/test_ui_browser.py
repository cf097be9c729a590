"""End to end: `streamlit run` the app and use it as a person would, in a real headless Chromium.

Two questions sent back to back, a reload, a chat picked from the list, a link between notes followed and back,
Stop during an answer (from a slow OpenAI-compatible server on loopback), and practice; the test fails on any
exception on the page, any console error, and any request that leaves for another host (a remote image in a note
must never be fetched).

Saves the page as tests/artifacts/chat.png; with UPDATE_SCREENSHOT=1 also as docs/screenshot.png (the README's
screenshot), so that a test run leaves the checkout clean.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.server_fixture import free_port, stop

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SERVER_START_S = 60
FIRST_ANSWER_S = 180  # the first page load builds the index and loads the model before the chat appears

pytestmark = pytest.mark.browser


def wait_until_serving(url: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"streamlit exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"streamlit did not serve {url} within {SERVER_START_S} s:\n{log.read_text()[-3000:]}")


SLOW_TOKENS = 80
TOKEN_GAP_S = 0.25  # 20 s an answer: ample time to press Stop
PIXEL = "https://tracker.invalid/pixel.png"
DYNAMO_NOTE = (
    "# DynamoDB\n\n## Partition keys\nA DynamoDB table spreads its items over partitions by a partition key."
    "<br/>Each item is found by its partition key.\n"
    "Functions that read the table are in [the Lambda notes](./aws.md#lambda).\n"
    f":red[Careful] with hot partitions. ![tracker]({PIXEL})\n"
)


LAMBDA_WORDS = (
    "Lambda is AWS’s serverless technology that allows you to run functions in the cloud [1]. "
    "It’s a huge cost saver as you pay only when your functions execute [1]. "
    "Lambda is a serverless compute service that runs code in response to events [1]."
).split()


class SlowLLM(BaseHTTPRequestHandler):
    """An OpenAI-compatible chat endpoint that streams its answer a token every `TOKEN_GAP_S` seconds."""

    def do_POST(self):  # noqa: N802 - the http.server API
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        try:
            for n in range(SLOW_TOKENS):
                # The note's own sentences, word by word: the answerer checks each sentence against the sources
                # and shows only those the notes support.
                word = LAMBDA_WORDS[n % len(LAMBDA_WORDS)]
                chunk = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "slow"}
                chunk["choices"] = [{"index": 0, "delta": {"content": word + " "}}]
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()
                time.sleep(TOKEN_GAP_S)
            self.wfile.write(b"data: [DONE]\n\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the app stopped reading: the user pressed Stop

    def log_message(self, *args):
        pass


@pytest.fixture
def slow_llm():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), SlowLLM)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def server(tmp_path, slow_llm):
    """A `streamlit run` of the app on a free loopback port, over the bundled notes and a note that links to them,
    a temporary index, and the slow LLM; killed afterwards. Yields its URL and its log file."""
    notes = tmp_path / "notes"
    shutil.copytree(ROOT / "corpus" / "notes", notes)
    (notes / "dynamo.md").write_text(DYNAMO_NOTE, encoding="utf-8")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "NOTES_DIR": str(notes),
        "NOTES_INDEX_DIR": str(tmp_path / "index"),
        "NOTES_LLM": "openai:slow",
        "NOTES_LLM_BASE_URL": slow_llm,
        "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
    }
    for name in ("NOTES_TOP_K", "NOTES_MODEL_DIR", "NOTES_FORGE_URL"):
        env.pop(name, None)
    # streamlit is run from the virtualenv running the tests, not whichever one is on PATH.
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(ROOT / "streamlit_app.py"),
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--server.address",
        "127.0.0.1",
        "--browser.gatherUsageStats",
        "false",
    ]
    log = tmp_path / "streamlit.log"
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until_serving(url, process, log)
        yield url, log, process.pid
    finally:
        stop(process)


@pytest.fixture
def chromium_path() -> Path:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing; CI must install Debian's chromium")
        pytest.skip(f"{CHROMIUM} is missing (install Debian's chromium to run the browser test)")
    return CHROMIUM


def no_exception(page) -> None:
    errors = page.get_by_test_id("stException")
    assert errors.count() == 0, errors.first.inner_text()


def inotify_watches(pid: int) -> int:
    fdinfo = Path(f"/proc/{pid}/fdinfo")
    return sum(p.read_text().count("inotify wd:") for p in fdinfo.iterdir() if p.exists())


def settled(page) -> None:
    """Every question answered: no answer being written, none waiting."""
    expect_ = __import__("playwright.sync_api", fromlist=["expect"]).expect
    expect_(page.get_by_text("Writing the answer…")).to_have_count(0, timeout=FIRST_ANSWER_S * 1000)
    expect_(page.get_by_text(re.compile("^Waiting: answered after"))).to_have_count(0, timeout=FIRST_ANSWER_S * 1000)
    expect_(page.get_by_text(re.compile("^Waiting for the index"))).to_have_count(0, timeout=FIRST_ANSWER_S * 1000)


def test_chatting_in_a_browser(server, chromium_path):
    from playwright.sync_api import expect, sync_playwright

    url, log, pid = server
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "chat.png"
    console_errors: list[str] = []
    elsewhere: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium_path), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1300})
            page = context.new_page()
            page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda err: console_errors.append(str(err)))
            context.on(
                "request",
                lambda r: elsewhere.append(r.url) if not r.url.startswith((url, "data:", "blob:")) else None,
            )
            page.goto(url)
            box = page.get_by_test_id("stChatInputTextArea")
            expect(box).to_be_visible(timeout=FIRST_ANSWER_S * 1000)
            sidebar = page.get_by_test_id("stSidebar")
            # The notes are indexed in the background; these questions want all of them, so wait for it.
            expect(sidebar).to_contain_text("2 file(s)", timeout=FIRST_ANSWER_S * 1000)
            expect(sidebar.get_by_test_id("stProgress")).to_have_count(0, timeout=FIRST_ANSWER_S * 1000)
            sidebar.get_by_text("extractive", exact=True).click()

            # Two questions sent back to back: both stay, both are answered, in order.
            box.fill("What is Lambda?")
            box.press("Enter")
            page.wait_for_timeout(300)
            box.fill("What is a partition key?")
            box.press("Enter")
            messages = page.get_by_test_id("stChatMessage")
            expect(messages).to_have_count(4, timeout=FIRST_ANSWER_S * 1000)
            settled(page)
            expect(messages.nth(1)).to_contain_text("serverless")
            expect(messages.nth(1)).to_contain_text(re.compile(r"\[1\]"))
            expect(messages.nth(3)).to_contain_text("partition key")
            reply = messages.nth(1)
            source = reply.get_by_test_id("stExpander").first
            source.locator("summary").click()
            expect(source.get_by_test_id("stExpanderDetails")).to_contain_text("run functions in the cloud")
            expect(page.get_by_test_id("stDownloadButton").locator("button")).to_be_enabled(timeout=30_000)
            page.wait_for_timeout(500)  # let the expander finish opening
            page.screenshot(path=str(shot), full_page=True)
            no_exception(page)

            # "How I searched", readable on a desktop and on a 390 px phone.
            search = reply.get_by_test_id("stExpander").filter(has_text="How I searched")
            search.locator("summary").click()
            expect(search.get_by_test_id("stExpanderDetails")).to_contain_text("fused")
            search.screenshot(path=str(ARTIFACTS / "search-desktop.png"))
            page.set_viewport_size({"width": 390, "height": 844})
            page.wait_for_timeout(500)
            search.scroll_into_view_if_needed()
            search.screenshot(path=str(ARTIFACTS / "search-390.png"))
            details = search.get_by_test_id("stExpanderDetails")
            assert details.evaluate("e => e.scrollWidth <= e.clientWidth + 1"), "How I searched scrolls sideways"
            page.set_viewport_size({"width": 1400, "height": 1300})

            # A reload comes back to the same chat.
            chat_url = page.url
            assert "chat=" in chat_url
            page.reload()
            expect(messages).to_have_count(4, timeout=60_000)
            assert page.url == chat_url

            # A new chat, then the first one picked from the list.
            sidebar.get_by_role("button", name="New chat").click()
            expect(messages).to_have_count(0, timeout=30_000)
            sidebar.get_by_role("button", name="What is Lambda?").click()
            expect(messages).to_have_count(4, timeout=30_000)
            assert page.url == chat_url

            # The partition-key source in the note view, its link to the Lambda notes followed, and back.
            dynamo = messages.nth(3).get_by_test_id("stExpander").filter(has_text="dynamo.md").first
            dynamo.locator("summary").click()
            dynamo.get_by_role("button", name="Open in the note view").click()
            expect(page.get_by_test_id("stHeading").filter(has_text="dynamo.md")).to_be_visible(timeout=30_000)
            main = page.get_by_test_id("stMain")
            expect(main).to_contain_text("by a partition key.\nEach item")  # `<br/>` is a line break
            expect(main).not_to_contain_text("<br")
            expect(main).to_contain_text(":red[Careful]")  # as written, not red
            expect(main.get_by_role("link", name="image: tracker")).to_have_attribute("href", PIXEL)
            expect(main.locator("img")).to_have_count(0)
            page.screenshot(path=str(ARTIFACTS / "note-dynamo.png"), full_page=True)
            main.get_by_role("button", name=re.compile("the Lambda notes")).click()
            heading = page.get_by_test_id("stHeading").filter(has_text=re.compile(r"^Lambda$"))
            expect(heading).to_be_visible(timeout=30_000)
            expect(heading).to_be_in_viewport(timeout=10_000)  # scrolled to the section linked
            assert "note=aws.md" in page.url
            page.screenshot(path=str(ARTIFACTS / "note.png"))
            no_exception(page)
            page.get_by_role("button", name="Back to chat").click()
            expect(messages).to_have_count(4, timeout=30_000)
            assert page.url == chat_url
            assert len(context.pages) == 1  # all in this tab

            # `[1]` in an answer goes to its source, on this page, in this tab.
            cite = messages.nth(1).get_by_role("link", name="[1]").first
            target = cite.get_attribute("href")
            assert re.fullmatch(r"#t\d+-1", target)
            cite.click()
            expect(page).to_have_url(re.compile(re.escape(target) + "$"))
            top = page.locator(target).evaluate("e => e.getBoundingClientRect().top")
            assert -5 <= top < 1300, top  # the source's place is on screen
            assert len(context.pages) == 1

            # Stop during an answer: the slow LLM writes a token every quarter second.
            sidebar.get_by_text("openai:slow", exact=True).click()
            box.fill("What is Lambda?")
            box.press("Enter")
            stop = page.get_by_role("button", name="Stop")
            expect(stop).to_be_visible(timeout=60_000)
            expect(messages.nth(5)).to_contain_text("run functions in the cloud", timeout=60_000)
            stop.click()
            # Well before the slow model would have finished (20 s): the answer ends when Stop is pressed.
            expect(messages.nth(5)).to_contain_text("Stopped.", timeout=10_000)
            expect(stop).to_have_count(0)
            settled(page)
            no_exception(page)

            # Practice: the page from the sidebar's navigation, a question on Lambda, an answer graded.
            page.get_by_test_id("stSidebarNavLink").filter(has_text="Practice").click()
            expect(page.get_by_test_id("stHeading").filter(has_text="Practice")).to_be_visible(timeout=30_000)
            page.get_by_label("Topic").fill("Lambda")
            page.get_by_text("Cram (ignore the schedule)").click()
            page.get_by_role("button", name="Start").click()
            expect(page.get_by_text("What is Lambda?")).to_be_visible(timeout=30_000)
            page.get_by_label("Your answer").fill("Serverless functions in the cloud that run on events.")
            page.get_by_role("button", name="Check").click()
            expect(page.get_by_test_id("stMetricValue")).to_contain_text("/100", timeout=30_000)
            page.screenshot(path=str(ARTIFACTS / "practice.png"), full_page=True)
            no_exception(page)
        finally:
            browser.close()
    assert console_errors == []
    assert elsewhere == []  # nothing fetched from another host: no remote image, no font, no telemetry
    assert inotify_watches(pid) == 0  # no file watcher (see .streamlit/config.toml)
    assert "Inotify" not in log.read_text()
    if os.environ.get("UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(shot, ROOT / "docs" / "screenshot.png")
