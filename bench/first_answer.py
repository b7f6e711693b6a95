"""The first student's first answer: how long after the first page load does it appear?

Starts the app on a fresh LAB_HOME the way the README does (`python server.py`, which
loads the model and the embedder as the server starts) and, for comparison, as plain
`streamlit run app.py` (they load on the first visit). A headless chromium opens the
Playground as soon as the server answers, presses Ask and times the base arm's answer
(the first of the four). Target: the first answer within 5 s of the first page load.

    python -m bench.first_answer [--rounds 2] [--delay 0]

--delay waits that many seconds after the server is up before the first visit (a teacher
rarely opens the page in the same second the server starts).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_run(browser, entry: list[str], delay: float) -> dict:
    from streamlit_browser import stop_server, wait_until_quiet

    port = free_port()
    home = tempfile.mkdtemp(prefix="lab-first-answer-")
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, *entry, "--server.port", str(port), "--server.headless", "true"],
                               cwd=ROOT, env={**os.environ, "LAB_HOME": home},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        while True:
            try:
                urllib.request.urlopen(url + "/_stcore/health", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        server_up = time.perf_counter() - started
        time.sleep(delay)
        page = browser.new_page()
        visit = time.perf_counter()
        page.goto(f"{url}/Playground")
        wait_until_quiet(page)
        page_ready = time.perf_counter() - visit
        page.get_by_role("button", name="Ask", exact=True).click()
        # The first answer: the base arm's reply with its token count under it (the other
        # three arms follow in the same run).
        page.locator(".st-key-playground-arm-base").get_by_text("prompt tokens").wait_for(timeout=300_000)
        answered = time.perf_counter() - visit
        page.locator(".st-key-playground-arm-both").get_by_text("prompt tokens").or_(
            page.locator(".st-key-playground-arm-both").get_by_text("No adapter")).wait_for(timeout=300_000)
        all_arms = time.perf_counter() - visit
        page.close()
        return {"server_up_s": round(server_up, 2), "page_ready_s": round(page_ready, 2),
                "first_answer_s": round(answered, 2), "all_four_arms_s": round(all_arms, 2)}
    finally:
        stop_server(process)
        shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--delay", type=float, default=0.0)
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright
    from streamlit_browser import CHROMIUM, CHROMIUM_ARGS

    from bench.common import write_results

    entries = {"server.py (warm-up at start)": ["server.py"],
               "streamlit run app.py (load on first visit)": ["-m", "streamlit", "run", "app.py"]}
    results = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        for _ in range(args.rounds):  # alternate, so machine noise falls on both
            for name, entry in entries.items():
                results.setdefault(name, []).append(one_run(browser, entry, args.delay))
        browser.close()
    summary = {name: {"first_answer_s_median": statistics.median(r["first_answer_s"] for r in runs), "runs": runs}
               for name, runs in results.items()}
    for name, data in summary.items():
        print(f"{name}: first answer {data['first_answer_s_median']:.1f} s after the first page load")
    warm = summary["server.py (warm-up at start)"]["first_answer_s_median"]
    write_results("first_answer", {"delay_s": args.delay, "rounds": args.rounds, "entries": summary,
                                   "target": "<= 5 s after the first page load", "passed": warm <= 5.0})


if __name__ == "__main__":
    main()
