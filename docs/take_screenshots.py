"""Take the README's screenshots: `streamlit run` on localhost, driven in Debian's chromium.

    .venv/bin/python docs/take_screenshots.py      (about three minutes on 2 cores)

A fresh LAB_HOME, so the pictures show a first visit: the acme scenario remembered,
then each page in a state worth looking at.
"""

import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"
sys.path.insert(0, str(ROOT))


# While a script run is in progress Streamlit's status widget offers "Stop" (older versions
# say "Running..."); it can also stay up for other notices, e.g. "source file changed".
RUN_FINISHED = """() => {
  const widget = document.querySelector('[data-testid="stStatusWidget"]');
  return !widget || !/running|stop/i.test(widget.innerText);
}"""


def idle(page):
    page.wait_for_timeout(1000)
    page.wait_for_function(RUN_FINISHED, timeout=900_000)
    page.wait_for_timeout(1000)


def main() -> None:
    from playwright.sync_api import sync_playwright

    home = tempfile.mkdtemp(prefix="lab-shots-")
    env = {**os.environ, "LAB_HOME": home}
    # The pictures' workspace, filled the way a student would: the acme corrections remembered.
    subprocess.run([sys.executable, "-c", "from lab.session import LabSession; from lab.scenario import load_scenario;"
                    "from lab.evaluate import remember_scenario; remember_scenario(LabSession.open('shots'),"
                    " load_scenario('acme'))"], cwd=ROOT, env=env, check=True)
    port = 8765
    server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                               "--server.headless", "true"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(url + "/_stcore/health", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=[
                "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            page = browser.new_page(viewport={"width": 1400, "height": 1500})

            def shot(name):
                OUT.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(OUT / f"{name}.png"), full_page=True)

            only = sys.argv[1:]  # e.g. "wipe-test": retake just that one
            if not only or "home" in only:
                page.goto(f"{url}/?workspace=shots")
                idle(page)
                shot("home")
            if not only or "playground-why" in only:
                page.goto(f"{url}/Playground?workspace=shots&scenario=acme")
                idle(page)
                page.get_by_label("Question", exact=True).fill("Who is the CEO of Acme Corp?")
                page.get_by_role("button", name="Ask", exact=True).click()
                idle(page)
                page.get_by_role("button", name="Why? Which memory changed the answer?").click()
                idle(page)
                shot("playground-why")
            if not only or "memory-explorer" in only:
                page.goto(f"{url}/Memory?workspace=shots")
                idle(page)
                page.get_by_role("tab", name="Retrieval explorer").click()
                page.get_by_label("Question", exact=True).fill("When does the support line open?")
                page.keyboard.press("Enter")
                idle(page)
                shot("memory-explorer")
            if only and "wipe-test" not in only:
                return
            page.goto(f"{url}/Wipe_Test?workspace=shots&scenario=acme")
            idle(page)
            page.get_by_text("loses it").first.click()
            idle(page)
            page.get_by_role("button", name="Run the wipe test").click()
            idle(page)
            shot("wipe-test")
            page.goto(f"{url}/Experiments?workspace=shots&scenario=poisoning")
            idle(page)
            page.get_by_role("button", name="Run", exact=True).click()
            idle(page)
            shot("experiments")
            page.goto(f"{url}/Workshop?workspace=shots&teacher=1")
            idle(page)
            shot("workshop")
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
