"""End to end: `streamlit run` the app and ask it a question in a real headless Chromium.

Saves the page as tests/artifacts/chat.png; with UPDATE_SCREENSHOT=1 also as docs/screenshot.png (the README's
screenshot), so that a test run leaves the checkout clean.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

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


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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


@pytest.fixture
def server(tmp_path):
    """A `streamlit run` of the app on a free loopback port, over a temporary index; killed afterwards."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "NOTES_INDEX_DIR": str(tmp_path / "index"),
        "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
    }
    for name in ("NOTES_DIR", "NOTES_LLM", "NOTES_TOP_K", "NOTES_MODEL_DIR"):
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
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture
def chromium_path() -> Path:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing; CI must install Debian's chromium")
        pytest.skip(f"{CHROMIUM} is missing (install Debian's chromium to run the browser test)")
    return CHROMIUM


def test_asking_in_a_browser_shows_a_cited_answer_and_its_source(server, chromium_path):
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "chat.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium_path), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1300})
            page.goto(server)
            box = page.get_by_test_id("stChatInputTextArea")
            expect(box).to_be_visible(timeout=FIRST_ANSWER_S * 1000)
            box.fill("What is Lambda?")
            box.press("Enter")

            reply = page.get_by_test_id("stChatMessage").filter(has=page.get_by_test_id("stExpander")).last
            expect(reply).to_contain_text(re.compile(r"\[1\]"), timeout=FIRST_ANSWER_S * 1000)
            expect(reply).to_contain_text("serverless")
            source = reply.get_by_test_id("stExpander").first
            source.locator("summary").click()
            expect(source.get_by_test_id("stExpanderDetails")).to_contain_text("run functions in the cloud")
            # The run is over once the export offers this chat; then the picture shows the finished page.
            expect(page.get_by_test_id("stDownloadButton").locator("button")).to_be_enabled(timeout=30_000)
            page.wait_for_timeout(500)  # let the expander finish opening
            page.screenshot(path=str(shot), full_page=True)

            assert page.get_by_test_id("stException").count() == 0, page.get_by_test_id(
                "stException"
            ).first.inner_text()

            # The source's path#anchor link opens the note, in a new tab, at that section.
            link = source.get_by_test_id("stExpanderDetails").get_by_role("link", name="aws.md#lambda")
            with page.context.expect_page() as opened:
                link.click()
            note = opened.value
            note.wait_for_load_state()
            assert "?note=aws.md#lambda" in note.url
            heading = note.get_by_test_id("stHeading").filter(has_text=re.compile(r"^Lambda$"))
            expect(heading).to_be_visible(timeout=FIRST_ANSWER_S * 1000)
            expect(note.locator("#lambda")).to_have_count(1)  # the anchor the link jumps to...
            expect(heading).to_be_in_viewport(timeout=10_000)  # ...and the page scrolled there
            expect(
                note.get_by_test_id("stMarkdownContainer").filter(has_text="run functions in the cloud")
            ).not_to_have_count(0)
            assert note.get_by_test_id("stChatInputTextArea").count() == 0  # the note, not the chat
            note.screenshot(path=str(ARTIFACTS / "note.png"))
            assert note.get_by_test_id("stException").count() == 0, note.get_by_test_id(
                "stException"
            ).first.inner_text()

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
            assert page.get_by_test_id("stException").count() == 0, page.get_by_test_id(
                "stException"
            ).first.inner_text()
        finally:
            browser.close()
    if os.environ.get("UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(shot, ROOT / "docs" / "screenshot.png")
