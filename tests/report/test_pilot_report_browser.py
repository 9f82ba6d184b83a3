"""The pilot's HTML report in a real headless Chromium (Debian's ``chromium``, driven by Playwright).

The page must load with no console message and no page error, render to a screenshot, and show a
caption that holds HTML as literal text (no element injected). CI installs Chromium
(``.ci/run`` sets MISALIGNLAB_REQUIRE_BROWSER=1, so a missing browser fails there instead of skipping).
"""

import os
import shutil

import numpy as np
import pytest
from tests.workflows.test_pilot import HOSTILE, user_pairs_with_hostile_caption

from misalignlab.workflows.pilot import run_pilot

pytestmark = pytest.mark.slow  # end-to-end: runs whole commands


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _browser_or_skip():
    required = bool(os.environ.get("MISALIGNLAB_REQUIRE_BROWSER"))
    try:
        from playwright import sync_api
    except ImportError:
        if required:
            raise
        pytest.skip("playwright is not installed")
    if CHROMIUM is None:
        if required:
            pytest.fail("chromium is not installed (apt-get install chromium)")
        pytest.skip("chromium is not installed")
    return sync_api


def test_report_loads_cleanly_and_shows_html_captions_as_text(tmp_path):
    sync_api = _browser_or_skip()
    data, cfg = user_pairs_with_hostile_caption("perturb-task", "browser<test>", at=5)
    run_pilot(data, cfg, tmp_path)
    messages = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page()
            page.on("console", lambda m: messages.append(f"console {m.type}: {m.text}"))
            page.on("pageerror", lambda e: messages.append(f"page error: {e}"))
            page.on("dialog", lambda d: (messages.append(f"dialog: {d.message}"), d.dismiss()))
            page.goto((tmp_path / "report.html").as_uri(), wait_until="load")
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
            decision = page.inner_text("#decision")
            captions = page.locator("#gallery .caption").all_inner_texts()
            injected = page.locator("#gallery b, script").count()
            images_ok = page.evaluate("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
            title = page.inner_text("h1")
        finally:
            browser.close()
    assert messages == []
    assert decision.startswith("Recommendation:")
    assert HOSTILE in captions  # shown literally, as text
    assert injected == 0 and images_ok
    assert title == "Pilot report: browser<test>"
    png = (tmp_path / "report.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert np.frombuffer(png[16:24], dtype=">u4")[0] > 0  # screenshot has a width
