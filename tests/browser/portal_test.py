"""The developer portal in a real browser, as a person uses it.

Started by invoker/tests/portal.rs, which renders four APIs (published,
deprecated, created, retired) and starts the real invoker and Envoy; this
drives Debian's headless Chromium through chromedriver (Selenium):

1. open the portal and read the list: the published and deprecated APIs
   are there (the deprecated one marked), the created and retired ones not;
2. open the published API's console, pick `GET /hello/{name}`, press
   "Try it out", fill the path parameter, press "Execute", and read the
   function's real answer in the page;
2b. with --protected: open that operation, execute it without a
   credential (the page shows 401), press "Authorize", give --token, and
   execute again (the page shows the function's answer);
3. check, from Chromium's own network log, that the pages asked no host
   but the gateway, and that the HTML came with a Content-Security-Policy;
   and from its console, that nothing was refused or failed.

Screenshots of the list and of the finished call go to --screenshots.

    python portal_test.py --portal http://127.0.0.1:PORT/portal/ \
        --listed demo:published --listed legacy:deprecated \
        --hidden draft --hidden old --try demo --screenshots DIR
"""

import argparse
import json
import os
import sys
import tempfile
import time
from urllib.parse import urlsplit

# Never let Selenium Manager look for a browser or driver on the network:
# the paths below are Debian's packages.
os.environ["SE_OFFLINE"] = "true"

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as ec  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# Each wait is bounded; the whole run takes a few seconds.
WAIT_SECONDS = 20


def fail(message):
    print(f"FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def check(condition, message):
    if not condition:
        fail(message)


def start_browser(profile):
    for path in (CHROMIUM, CHROMEDRIVER):
        check(
            os.access(path, os.X_OK),
            f"{path} is missing: run scripts/setup (apt packages chromium and chromium-driver)",
        )
    options = Options()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",  # running as root on CI
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        # Chromium's own traffic (updates, sync, safe browsing) would try
        # the closed network; the page's requests are what is checked.
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--window-size=1280,1000",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(WAIT_SECONDS)
    return driver


def wait(driver):
    return WebDriverWait(driver, WAIT_SECONDS)


def network_events(driver, seen):
    """Chromium's DevTools network events since the last call, collected."""
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method", "").startswith("Network."):
            seen.append(message)
    return seen


def read_portal_list(driver):
    """(name, version, state, text) of each API the list shows."""
    shown = []
    for section in driver.find_elements(By.CSS_SELECTOR, "section.api"):
        heading = section.find_element(By.TAG_NAME, "h2")
        name = heading.find_element(By.TAG_NAME, "a").text.strip()
        version = heading.find_element(By.CSS_SELECTOR, ".version").text.strip()
        state = heading.find_element(By.CSS_SELECTOR, ".state").text.strip().lower()
        shown.append((name, version, state, section.text))
    return shown


def execute(driver, operation, name):
    """Fills {name}, presses Execute; returns (status, body) once shown."""
    field = wait(driver).until(
        lambda d: operation.find_elements(By.CSS_SELECTOR, 'tr[data-param-name="name"] input')
    )[0]
    field.clear()
    field.send_keys(name)
    for old in operation.find_elements(By.CSS_SELECTOR, "button.btn-clear"):
        old.click()
    operation.find_element(By.CSS_SELECTOR, "button.execute").click()
    status = wait(driver).until(
        lambda d: next(
            (
                cell.text.strip()
                for cell in operation.find_elements(
                    By.CSS_SELECTOR, ".live-responses-table .response .response-col_status"
                )
                if cell.text.strip()
            ),
            None,
        )
    )
    bodies = operation.find_elements(
        By.CSS_SELECTOR, ".live-responses-table .response-col_description pre"
    )
    return status, " ".join(b.text for b in bodies)


def open_operation(driver, path):
    """Expands the GET operation at `path` and presses "Try it out"."""
    operation = wait(driver).until(
        ec.presence_of_element_located(
            (By.XPATH, f"//div[contains(@class,'opblock-get')][.//*[@data-path='{path}']]")
        )
    )
    driver.execute_script("arguments[0].scrollIntoView();", operation)
    operation.find_element(By.CSS_SELECTOR, ".opblock-summary-control").click()
    wait(driver).until(
        lambda d: operation.find_elements(By.CSS_SELECTOR, "button.try-out__btn")
    )[0].click()
    return operation


def authorize(driver, pick, secret):
    """Gives `secret` to the Authorize dialog's scheme whose text `pick`
    accepts (one still asking for a value), then closes the dialog."""
    driver.find_element(By.CSS_SELECTOR, "button.btn.authorize").click()
    dialog = wait(driver).until(ec.presence_of_element_located((By.CSS_SELECTOR, ".dialog-ux")))
    container = wait(driver).until(
        lambda d: next(
            (
                c
                for c in dialog.find_elements(By.CSS_SELECTOR, ".auth-container")
                if pick(c.text) and c.find_elements(By.CSS_SELECTOR, "input")
            ),
            None,
        )
    )
    container.find_element(By.CSS_SELECTOR, "input").send_keys(secret)
    container.find_element(By.CSS_SELECTOR, "button.authorize").click()
    wait(driver).until(lambda d: dialog.find_elements(By.CSS_SELECTOR, "button.btn-done"))[0].click()


def try_protected(driver, args):
    """The protected operation: 401 without a credential, 200 after the
    console's Authorize is given --token."""
    check(args.token, "--protected needs --token")
    operation = open_operation(driver, args.protected)
    status, body = execute(driver, operation, args.name)
    check(status == "401", f"without a credential the console shows {status!r}: {body}")
    check("Unauthorized" in body, f"the 401's body: {body}")
    # Authorize: the scheme's field in the dialog, then Authorize, Close.
    # The authorizer's scheme (the API key's has a container of its own).
    authorize(driver, lambda text: "api_key" not in text, args.token)
    # The response table of the first call is replaced by the second's.
    status, body = execute_until(driver, operation, args.name, "200")
    check(status == "200", f"with the credential the console shows {status!r}: {body}")
    check(f"Hello, {args.name}!" in body, f"not the function's answer: {body}")
    curl = " ".join(c.text for c in operation.find_elements(By.CSS_SELECTOR, ".curl-command, .curl"))
    check(args.token in curl, f"the console's request does not carry the credential: {curl}")
    driver.save_screenshot(os.path.join(args.screenshots, "portal-authorized.png"))
    return f"{args.protected}: 401 without, 200 authorized; "


def execute_until(driver, operation, name, want):
    """Executes until the page shows status `want` (or gives up)."""
    deadline = time.monotonic() + WAIT_SECONDS
    status, body = execute(driver, operation, name)
    while status != want and time.monotonic() < deadline:
        time.sleep(0.2)
        status = operation.find_element(
            By.CSS_SELECTOR, ".live-responses-table .response .response-col_status"
        ).text.strip()
        body = " ".join(
            b.text
            for b in operation.find_elements(By.CSS_SELECTOR, ".live-responses-table .response-col_description pre")
        )
    return status, body


def try_keyed(driver, args):
    """The keyed operation: 403 without an API key, 200 after Authorize is
    given --key, then 429 once the console's calls pass the plan's rate."""
    operation = open_operation(driver, args.keyed)
    status, body = execute(driver, operation, args.name)
    check(status == "403", f"without a key the console shows {status!r}: {body}")
    check("Forbidden" in body, f"the 403's body: {body}")
    authorize(driver, lambda text: "api_key" in text, args.key)
    status, body = execute_until(driver, operation, args.name, "200")
    check(status == "200", f"with the key the console shows {status!r}: {body}")
    check(f"Hello, {args.name}!" in body, f"not the function's answer: {body}")
    # Past the plan's rate: the page shows 429 Too Many Requests.
    for _ in range(10):
        status, body = execute(driver, operation, args.name)
        if status == "429":
            break
    check(status == "429", f"past the plan's rate the console shows {status!r}: {body}")
    check("Too Many Requests" in body, f"the 429's body: {body}")
    driver.save_screenshot(os.path.join(args.screenshots, "portal-keyed.png"))
    return f"{args.keyed}: 403 without a key, 200 with it, 429 past the plan; "


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--portal", required=True, help="the portal's URL through the gateway")
    parser.add_argument("--listed", action="append", default=[], help="NAME:STATE expected in the list")
    parser.add_argument("--hidden", action="append", default=[], help="NAME that must not be listed")
    parser.add_argument("--try", dest="try_api", required=True, help="the API whose console is used")
    parser.add_argument("--name", default="Portal", help="the value typed for {name}")
    parser.add_argument("--protected", help="the path of an operation an authorizer guards")
    parser.add_argument("--token", help="the credential the console's Authorize is given")
    parser.add_argument("--keyed", help="the path of an operation that needs an API key")
    parser.add_argument("--key", help="the API key the console's Authorize is given")
    parser.add_argument("--screenshots", required=True, help="folder for portal.png and portal-try-it.png")
    args = parser.parse_args()
    gateway = urlsplit(args.portal)
    origin = f"{gateway.scheme}://{gateway.netloc}"
    os.makedirs(args.screenshots, exist_ok=True)
    for stale in ("portal.png", "portal-try-it.png", "portal-authorized.png", "failure.png"):
        if os.path.exists(os.path.join(args.screenshots, stale)):
            os.remove(os.path.join(args.screenshots, stale))
    started = time.monotonic()

    with tempfile.TemporaryDirectory(prefix="lambdagate-chromium-") as profile:
        driver = start_browser(profile)
        events = []
        try:
            # 1. The list.
            driver.get(args.portal)
            wait(driver).until(ec.presence_of_element_located((By.CSS_SELECTOR, "main")))
            check(driver.title.startswith("APIs"), f"portal title: {driver.title!r}")
            shown = read_portal_list(driver)
            names = [s[0] for s in shown]
            for expected in args.listed:
                name, state = expected.split(":")
                match = [s for s in shown if s[0] == name]
                check(match, f"{name} is not listed; the list shows {names}")
                check(match[0][2] == state, f"{name} is shown as {match[0][2]!r}, expected {state!r}")
                if state == "deprecated":
                    check("Deprecated" in match[0][3], f"{name} carries no deprecation notice: {match[0][3]!r}")
            for name in args.hidden:
                check(name not in names, f"{name} is listed but must not be: {names}")
            driver.save_screenshot(os.path.join(args.screenshots, "portal.png"))

            # 2. The console: open it from the list, as a reader would.
            section = driver.find_element(By.CSS_SELECTOR, f'section.api[data-api="{args.try_api}"]')
            section.find_element(By.LINK_TEXT, "Open the console").click()
            operation = wait(driver).until(
                ec.presence_of_element_located(
                    (By.XPATH, "//div[contains(@class,'opblock-get')][.//*[@data-path='/hello/{name}']]")
                )
            )
            operation.find_element(By.CSS_SELECTOR, ".opblock-summary-control").click()
            wait(driver).until(
                lambda d: operation.find_elements(By.CSS_SELECTOR, "button.try-out__btn")
            )[0].click()
            field = wait(driver).until(
                lambda d: operation.find_elements(
                    By.CSS_SELECTOR, 'tr[data-param-name="name"] input'
                )
            )[0]
            field.clear()
            field.send_keys(args.name)
            operation.find_element(By.CSS_SELECTOR, "button.execute").click()
            expected_message = f"Hello, {args.name}!"
            answer = wait(driver).until(
                lambda d: next(
                    (
                        body
                        for body in operation.find_elements(
                            By.CSS_SELECTOR, ".live-responses-table .response-col_description pre"
                        )
                        if expected_message in body.text
                    ),
                    None,
                )
            )
            status = operation.find_element(
                By.CSS_SELECTOR, ".live-responses-table .response .response-col_status"
            ).text.strip()
            check(status == "200", f"the console shows status {status!r}")
            body = answer.text
            check('"runtime": "rust"' in body or '"runtime":"rust"' in body, f"not the Rust function's answer: {body}")
            request_url = operation.find_element(By.CSS_SELECTOR, ".request-url pre").text.strip()
            check(
                request_url.startswith(f"{origin}/"),
                f"the console called {request_url}, not this gateway ({origin})",
            )
            # The whole page, tall enough to show the answer below the form.
            driver.set_window_size(1280, 1800)
            driver.execute_script("window.scrollTo(0, 0);")
            time.sleep(0.3)  # let the resize settle before the picture
            driver.save_screenshot(os.path.join(args.screenshots, "portal-try-it.png"))

            authorized = ""
            if args.protected:
                authorized = try_protected(driver, args)
            if args.keyed:
                check(args.key, "--keyed needs --key")
                authorized += try_keyed(driver, args)

            # 3. What the browser itself saw.
            network_events(driver, events)
            requested = [
                e["params"]["request"]["url"]
                for e in events
                if e["method"] == "Network.requestWillBeSent"
            ]
            # From the portal on: before it, the log holds Chromium's own
            # new-tab page (chrome:// resources), which is not the portal's.
            check(args.portal in requested, f"the portal is not in the network log: {requested}")
            requested = requested[requested.index(args.portal):]
            fetched = [u for u in requested if not u.startswith(("data:", "blob:"))]
            foreign = [u for u in fetched if f"{urlsplit(u).scheme}://{urlsplit(u).netloc}" != origin]
            check(not foreign, f"requests to other hosts: {foreign}")
            for must in (args.portal, "console/swagger-ui-bundle.js", ".openapi.json", f"/hello/{args.name}"):
                check(any(must in u for u in fetched), f"no request for {must} in the network log: {fetched}")
            documents = [
                e["params"]["response"]
                for e in events
                if e["method"] == "Network.responseReceived"
                and e["params"].get("type") == "Document"
                and e["params"]["response"]["url"].startswith(f"{origin}/")
            ]
            check(len(documents) >= 2, f"expected the list and the console pages, got {len(documents)}")
            for doc in documents:
                headers = {k.lower(): v for k, v in doc["headers"].items()}
                csp = headers.get("content-security-policy", "")
                check("default-src 'self'" in csp, f"{doc['url']}: Content-Security-Policy is {csp!r}")
                check("script-src 'self'" in csp, f"{doc['url']}: scripts not restricted: {csp!r}")
                check(headers.get("x-content-type-options") == "nosniff", f"{doc['url']}: no nosniff")
            problems = [
                entry["message"]
                for entry in driver.get_log("browser")
                if (entry["level"] == "SEVERE" or "Content Security Policy" in entry["message"])
                # The protected call without a credential: its 401 is expected;
                # so are the keyed call's 403 and 429.
                and not (args.protected and "status of 401" in entry["message"])
                and not (args.keyed and ("status of 403" in entry["message"] or "status of 429" in entry["message"]))
            ]
            check(not problems, f"the browser console reported: {problems}")
        except SystemExit:
            driver.save_screenshot(os.path.join(args.screenshots, "failure.png"))
            raise
        except Exception as e:  # a Selenium timeout or a missing element
            driver.save_screenshot(os.path.join(args.screenshots, "failure.png"))
            fail(f"{type(e).__name__}: {e} (page {driver.current_url})")
        finally:
            driver.quit()
    print(
        f"ok: listed {names}; console answered {expected_message!r}; "
        f"{len(fetched)} requests, all to {origin}; {authorized}{time.monotonic() - started:.1f}s"
    )


if __name__ == "__main__":
    main()
