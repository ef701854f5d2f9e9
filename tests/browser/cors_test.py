"""CORS in a real browser: headless Chromium opens a page served from one
loopback origin and a page from another; each page's script calls the API
through the gateway with `fetch` and an `x-api-key` header (so the browser
sends a preflight first). The listed origin's call must get the function's
answer; the other's must be blocked by the browser.

    cors_test.py --allowed http://127.0.0.1:P1/call.html \
                 --blocked http://127.0.0.1:P2/call.html --profile DIR

The pages (written by the Rust test) put the outcome in document.title:
`ok <status> <body>` or `blocked <error>`.
"""

import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from portal_test import check, start_browser, wait  # noqa: E402


def outcome(driver, url):
    driver.get(url)
    return wait(driver).until(
        lambda d: d.title if d.title.startswith(("ok ", "blocked ")) else None
    )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--allowed", required=True, help="a page on an origin the API lists")
    parser.add_argument("--blocked", required=True, help="a page on an origin it does not")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as profile:
        driver = start_browser(profile)
        try:
            allowed = outcome(driver, args.allowed)
            check(allowed.startswith("ok 200 "), f"the listed origin's call: {allowed}")
            check("Hello" in allowed or "authorizer" in allowed, f"not the function's answer: {allowed}")
            blocked = outcome(driver, args.blocked)
            check(blocked.startswith("blocked "), f"the other origin's call was not blocked: {blocked}")
            cors_errors = [
                e["message"]
                for e in driver.get_log("browser")
                if "CORS policy" in e["message"]
            ]
            check(cors_errors, "the browser logged no CORS refusal")
        finally:
            driver.quit()
    print(f"ok: listed origin got {allowed[:40]!r}; other origin {blocked[:60]!r}")


if __name__ == "__main__":
    main()
