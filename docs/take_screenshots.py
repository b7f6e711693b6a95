"""Take the README's screenshots: `streamlit run` on localhost, driven in Debian's chromium.

    .venv/bin/python docs/take_screenshots.py      (about three minutes on 2 cores)

A fresh LAB_HOME, so the pictures show a first visit: the acme scenario remembered,
then each page in a state worth looking at.
"""

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import parse_qs, urlparse

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the browser helpers the end-to-end tests use

from streamlit_browser import (CHROMIUM, CHROMIUM_ARGS, LOADED, click_and_wait, streamlit_server,  # noqa: E402
                              wait_for_run, wait_until_quiet, watch_runs)


def loaded(page):
    """After page.goto: the page's first run has finished (then a moment for charts to draw)."""
    page.wait_for_function(LOADED, timeout=900_000)
    page.wait_for_timeout(1000)


def run(page, button):
    """Click and wait for the run it starts (a wipe test takes minutes)."""
    click_and_wait(page, button, timeout_ms=900_000)
    page.wait_for_timeout(1000)


def main() -> None:
    from playwright.sync_api import sync_playwright

    home = tempfile.mkdtemp(prefix="lab-shots-")
    env = {**os.environ, "LAB_HOME": home}
    # The pictures' workspace, filled the way a student would: the acme corrections remembered.
    subprocess.run([sys.executable, "-c", "from lab.session import LabSession; from lab.scenario import load_scenario;"
                    "from lab.evaluate import remember_scenario; remember_scenario(LabSession.open('shots'),"
                    " load_scenario('acme'))"], cwd=ROOT, env=env, check=True)
    # The owner's edit key: without it an address naming the workspace opens a copy (lab/sharing.py).
    shots = subprocess.run([sys.executable, "-c", "from lab.sharing import ensure_edit_key; from lab.workspace import "
                            "Workspace; print(ensure_edit_key(Workspace.open('shots')))"],
                           cwd=ROOT, env=env, check=True, capture_output=True, text=True).stdout.strip()
    shots = f"workspace=shots&key={shots}"
    with streamlit_server(home) as url:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1500})

            def shot(name):
                OUT.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(OUT / f"{name}.png"), full_page=True)

            only = sys.argv[1:]  # e.g. "wipe-test": retake just that one
            if not only or "home" in only:
                page.goto(f"{url}/?{shots}")
                loaded(page)
                shot("home")
            if not only or "playground-why" in only:
                page.goto(f"{url}/Playground?{shots}&scenario=acme")
                loaded(page)
                page.get_by_label("Question", exact=True).fill("Who is the CEO of Acme Corp?")
                run(page, page.get_by_role("button", name="Ask", exact=True))
                run(page, page.get_by_role("button", name="Why? Which memory changed the answer?"))
                shot("playground-why")
            if not only or "playground-fixed" in only:
                # A fresh workspace: ask, correct, ask again; then wipe and ask once more.
                page.goto(f"{url}/Playground?workspace=shots-demo&scenario=acme")
                loaded(page)
                demo = "workspace=shots-demo&key=" + parse_qs(urlparse(page.url).query)["key"][0]
                run(page, page.get_by_role("button", name="Ask", exact=True))
                run(page, page.get_by_role("button", name="Remember the correction"))
                run(page, page.get_by_role("button", name="Ask", exact=True))
                shot("playground-fixed")
                page.goto(f"{url}/Memory?{demo}")
                loaded(page)
                run(page, page.get_by_text("I understand"))
                run(page, page.get_by_role("button", name="Wipe memory"))
                page.goto(f"{url}/Playground?{demo}&scenario=acme")
                loaded(page)
                run(page, page.get_by_role("button", name="Ask", exact=True))
                shot("playground-after-wipe")
            if not only or "memory-explorer" in only:
                page.goto(f"{url}/Memory?{shots}")
                loaded(page)
                page.get_by_role("tab", name="Retrieval explorer").click()
                page.get_by_label("Question", exact=True).fill("When does the support line open?")
                watch_runs(page)
                page.keyboard.press("Enter")
                wait_for_run(page, 900_000)
                page.wait_for_timeout(1000)
                shot("memory-explorer")
            if only and "wipe-test" not in only:
                return
            page.goto(f"{url}/Wipe_Test?{shots}&scenario=acme")
            loaded(page)
            # The learned arm trained from the page, as the demo does it, then the reveal.
            run(page, page.get_by_role("button", name="Train the learned arm on these 20 corrections first"))
            page.get_by_text("on these corrections in").wait_for(timeout=900_000)
            wait_until_quiet(page)
            run(page, page.locator(".st-key-wipe_test-predict_memory").get_by_text("loses it"))
            run(page, page.locator(".st-key-wipe_test-predict_learned").get_by_text("keeps it"))
            run(page, page.get_by_role("button", name="Run the wipe test"))
            page.get_by_text("Reveal", exact=True).scroll_into_view_if_needed()
            shot("wipe-test")
            page.goto(f"{url}/Experiments?{shots}&scenario=poisoning")
            loaded(page)
            run(page, page.get_by_role("button", name="Run", exact=True))
            shot("experiments")
            page.goto(f"{url}/Workshop?{shots}&teacher=1")
            loaded(page)
            shot("workshop")
            browser.close()


if __name__ == "__main__":
    main()
