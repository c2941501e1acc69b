"""Screenshot a report page with Debian's headless Chromium, as the README's pictures were made.

    .venv/bin/python docs/screenshot.py experiments.html docs/report-experiments.png [--width 1280]

The page is opened from disk with the network cut off (the reports inline their scripts), the
charts are given time to draw, and the whole page is captured.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("page", type=Path, help="an HTML file written by `nba report`")
    parser.add_argument("out", type=Path, help="the PNG to write")
    parser.add_argument("--width", type=int, default=1280, help="viewport width in pixels")
    args = parser.parse_args()
    if not args.page.is_file():
        parser.error(f"page: expected an HTML file; got {str(args.page)!r}, which is not a file")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": args.width, "height": 900}, offline=True)
        page = context.new_page()
        page.goto(args.page.resolve().as_uri(), wait_until="load")
        page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot .main-svg').length > 0")
        page.wait_for_timeout(500)
        page.screenshot(path=str(args.out), full_page=True)
        browser.close()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
