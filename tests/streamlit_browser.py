"""Driving `streamlit run` in Debian's chromium: shared by tests/test_browser.py and
docs/take_screenshots.py (a test tool's own browser download cannot work offline).

Streamlit marks the app root with the script's state: "running" while a run is in
progress, "notRunning" once it has finished. Right after a click the root still reads
"notRunning" from the previous run, so waiting for "notRunning" alone can return before
the new run has even started (CI once read a stale answer that way). `watch_runs` counts
the runs that start from the moment it is called; RUN_FINISHED needs one to have started.
It first waits for a quiet page: a run still going then (a page switch's, say) could end
before the click's rerun began and be taken for it (CI read a stale answer that way too).
"""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]

_STATE = "document.querySelector('[data-testid=\"stApp\"]')?.getAttribute('data-test-script-state')"
# After page.goto: the state starts as "initial", so this waits for the first run to end.
LOADED = f"() => {_STATE} === 'notRunning'"
WATCH_RUNS = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  if (window.labRunWatcher) window.labRunWatcher.disconnect();
  // A run still going when we start watching ends only after the rerun a click asks for.
  window.labRunsStarted = app.getAttribute('data-test-script-state') === 'notRunning' ? 0 : 1;
  window.labRunWatcher = new MutationObserver(() => {
    if (app.getAttribute('data-test-script-state') !== 'notRunning') window.labRunsStarted++;
  });
  window.labRunWatcher.observe(app, {attributes: true, attributeFilter: ['data-test-script-state']});
}"""
RUN_FINISHED = f"() => window.labRunsStarted > 0 && {_STATE} === 'notRunning'"


def wait_until_quiet(page, quiet_ms: int = 500, timeout_ms: int = 180_000) -> None:
    """Wait until no run has been going for `quiet_ms`: a run that reruns itself (st.rerun)
    can read "notRunning" for a moment between the two."""
    deadline = time.monotonic() + timeout_ms / 1000
    while True:
        page.wait_for_function(LOADED, timeout=timeout_ms)
        page.evaluate(WATCH_RUNS)
        page.wait_for_timeout(quiet_ms)
        if page.evaluate(f"() => window.labRunsStarted === 0 && {_STATE} === 'notRunning'"):
            return
        if time.monotonic() > deadline:
            raise TimeoutError("the page never stopped running")


def watch_runs(page) -> None:
    """Call before the action that starts a run; then `wait_for_run`. Waits for a quiet page
    first, so the count of started runs begins at zero."""
    wait_until_quiet(page)


def wait_for_run(page, timeout_ms: int = 180_000) -> None:
    page.wait_for_function(RUN_FINISHED, timeout=timeout_ms)


def click_and_wait(page, button, timeout_ms: int = 180_000) -> None:
    """Click a button and wait until the script run it starts has finished."""
    watch_runs(page)
    button.click()
    wait_for_run(page, timeout_ms)


OUTPUT = ROOT / "tests" / "output"  # screenshots of the browser tests


def shot(page, name: str) -> None:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUTPUT / f"{name}.png"), full_page=True)


def no_exception(page) -> None:
    """No Streamlit exception box on the page (its text is the failure message if there is one)."""
    boxes = page.locator("[data-testid='stException']")
    assert boxes.count() == 0, boxes.first.inner_text()


SERVER_GRACE_S = 10  # after SIGTERM; then SIGKILL


@contextmanager
def streamlit_server(lab_home: str):
    """`streamlit run app.py` on a free local port with its own LAB_HOME; yields its URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # The server's output goes to a file: a pipe nobody reads fills up and blocks the
    # server mid-write, which is one way it once failed to exit on SIGTERM.
    log = tempfile.TemporaryFile()
    process = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                                "--server.headless", "true", "--browser.gatherUsageStats", "false"],
                               cwd=ROOT, env={**os.environ, "LAB_HOME": lab_home},
                               stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(url + "/_stcore/health", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        else:
            log.seek(0)
            raise RuntimeError("streamlit did not start: " + log.read().decode(errors="replace")[-2000:])
        yield url
    finally:
        stop_server(process)
        log.close()


def stop_server(process: subprocess.Popen, grace_s: float = SERVER_GRACE_S) -> None:
    """SIGTERM, a grace period, then SIGKILL, and always reap: teardown never hangs or leaks.

    A server busy in llama.cpp (a C call holds the thread) can take longer than any fixed
    wait to act on SIGTERM; SIGKILL cannot be ignored.
    """
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
    process.wait()
