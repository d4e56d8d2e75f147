#!/usr/bin/env python3
"""Browser test of Steno's web page (`/`) and API docs (`/docs`), in headless Chromium driven by Selenium.

Run by scripts/browser-test.sh, which starts a server with one API key and passes:
  STENO_BASE_URL   the server, e.g. http://127.0.0.1:41234
  STENO_API_KEY    a key the server accepts
  SCREENSHOT_DIR   where desktop.png and phone.png (and the full-page variants) are written
  STENO_TEST_AUDIO optional: another recording from pocketsphinx-testdata's librivox folder

Steps: the page asks for the key (its first API call is answered 401), the key is entered; a real recording is
sent through the file input and transcribed; the transcript is compared with the recording's reference text;
clicking a word seeks the player to that word, and the arrow keys and Enter do the same; the SRT download is
saved; the key is in sessionStorage and nowhere else; the layout fits a phone; Swagger UI renders the document.
"""

import base64
import collections
import os
import re
import sys
import tempfile
import time
import traceback

from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

BASE = os.environ["STENO_BASE_URL"].rstrip("/")
KEY = os.environ["STENO_API_KEY"]
SCREENSHOTS = os.environ.get("SCREENSHOT_DIR", ".build/screenshots")
AUDIO = os.environ.get(
    "STENO_TEST_AUDIO",
    "/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0870.wav")
TRANSCRIPT_TIMEOUT = 120
KEY_STORAGE = "steno.apiKey"


def log(message):
    print("browser-test: " + message, flush=True)


def reference_text(audio):
    """The reference transcript pocketsphinx-testdata ships next to the recording (`<s> … </s> (file id)`)."""
    file_id = os.path.splitext(os.path.basename(audio))[0]
    with open(os.path.join(os.path.dirname(audio), "transcription"), encoding="utf-8") as f:
        for line in f:
            match = re.match(r"\s*<s>(.*)</s>\s*\((.+)\)\s*$", line)
            if match and match.group(2) == file_id:
                return match.group(1).strip()
    raise AssertionError(f"no reference transcript for {file_id}")


SPELLED = {"mr": "mister", "mrs": "missus", "dr": "doctor"}


def words_of(text):
    words = re.sub(r"[^a-z0-9' ]+", " ", text.lower().replace("-", " ")).split()
    return [SPELLED.get(w.strip("'"), w.strip("'")) for w in words if w.strip("'")]


def make_driver(download_dir):
    options = Options()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--autoplay-policy=no-user-gesture-required", "--window-size=1280,900",
                     "--disable-gpu", "--no-first-run", "--disable-extensions",
                     # A fake microphone (a tone), allowed without asking, for the recording button.
                     "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"):
        options.add_argument(argument)
    options.add_experimental_option("prefs", {
        "download.default_directory": download_dir,
        "download.prompt_for_download": False,
        "download.directory_upgrade": True,
        "safebrowsing.enabled": False,
    })
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    # Headless Chromium saves downloads only where it is told to.
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": download_dir})
    return driver


def viewport(driver, width, height, mobile):
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile})
    WebDriverWait(driver, 5).until(lambda d: d.execute_script("return window.innerWidth") == width)


def screenshot(driver, name, full_page=False):
    path = os.path.join(SCREENSHOTS, name)
    if full_page:
        size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
        shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}})
        with open(path, "wb") as f:
            f.write(base64.b64decode(shot["data"]))
    else:
        driver.save_screenshot(path)
    log(f"screenshot {path}")


def js(driver, script, *args):
    return driver.execute_script(script, *args)


def wait(driver, seconds, condition, message):
    try:
        return WebDriverWait(driver, seconds, poll_frequency=0.2).until(condition)
    except TimeoutException:
        raise AssertionError(f"{message} (after {seconds} s); status: {status_text(driver)!r}") from None


def status_text(driver):
    try:
        return js(driver, "return [document.getElementById('status').textContent, "
                          "document.getElementById('error').textContent].join(' | ')")
    except Exception:  # noqa: BLE001 - only for the failure message
        return "?"


def severe_console_messages(driver):
    """Console errors, without the network lines Chromium logs for every 4xx answer (the expected 401)."""
    messages = []
    for entry in driver.get_log("browser"):
        if entry.get("level") == "SEVERE" and "Failed to load resource" not in entry.get("message", ""):
            messages.append(entry["message"])
    return messages


def foreign_requests(driver):
    return js(driver, """
        return performance.getEntriesByType('resource').map(e => e.name)
            .filter(u => !u.startsWith(location.origin + '/') && !u.startsWith('blob:') && !u.startsWith('data:'));""")


def test_page(driver, download_dir):
    reference = reference_text(AUDIO)
    log(f"recording {AUDIO}: {reference!r}")

    # 1. The page asks for the key: its first API call (the recent jobs) is answered 401.
    driver.get(BASE + "/")
    assert driver.title.startswith("Steno"), driver.title
    key_input = wait(driver, 15, EC.visibility_of_element_located((By.ID, "api-key")),
                     "the page did not ask for the API key")
    assert js(driver, f"return sessionStorage.getItem('{KEY_STORAGE}')") is None
    assert "API key" in driver.find_element(By.ID, "key-message").text
    assert driver.switch_to.active_element == key_input, "the key field has no focus"
    key_input.send_keys(KEY)
    driver.find_element(By.ID, "key-submit").click()
    wait(driver, 5, EC.invisibility_of_element_located((By.ID, "key-panel")), "the key panel stayed open")
    wait(driver, 10, lambda d: "No jobs yet" in d.find_element(By.ID, "jobs-message").text
         or d.find_elements(By.CSS_SELECTOR, "#jobs-list button[data-job-id]"),
         "the recent jobs were not listed with the key")
    log("the page asked for the key and listed the recent jobs with it")

    # 2. Options: the models come from /readyz, the default one preselected; word timestamps on.
    model = js(driver, "const s = document.getElementById('model'); return s.options.length ? s.value : null;")
    assert model, "no model in the model select"
    assert driver.find_element(By.ID, "word-timestamps").is_selected(), "word timestamps are not on by default"
    log(f"model preselected: {model}")

    # 3. Recording from the (fake) microphone chooses the recording as the file to send.
    submit = driver.find_element(By.ID, "submit")
    assert not submit.is_enabled(), "submit is enabled without a file"
    record = driver.find_element(By.ID, "record")
    record.click()
    wait(driver, 5, lambda d: d.find_element(By.ID, "record").get_attribute("aria-pressed") == "true", "recording did not start")
    time.sleep(1.5)
    record.click()
    wait(driver, 5, lambda d: "Recorded: recording-" in d.find_element(By.ID, "chosen").text, "the recording was not chosen")
    assert submit.is_enabled(), "submit stayed disabled after recording"
    log(f"microphone: {driver.find_element(By.ID, 'chosen').text!r}")

    # 4. Upload a real recording through the file input instead, and submit.
    driver.find_element(By.ID, "file").send_keys(AUDIO)
    wait(driver, 5, lambda d: "Chosen: " + os.path.basename(AUDIO) in d.find_element(By.ID, "chosen").text,
         "the file input did not choose the file")
    speakers = driver.find_element(By.ID, "speakers")
    assert speakers.is_enabled() and not speakers.is_selected(), "the speaker-label option is not offered, off"
    speakers.click()
    started = time.monotonic()
    submit.click()

    # 5. The transcript appears.
    wait(driver, TRANSCRIPT_TIMEOUT,
         lambda d: d.find_element(By.ID, "transcript").is_displayed()
         and len(d.find_elements(By.CSS_SELECTOR, "#transcript .word")) > 0,
         "no transcript")
    log(f"transcript after {time.monotonic() - started:.1f} s; status: {driver.find_element(By.ID, 'status').text!r}")
    assert driver.find_element(By.ID, "status").text.startswith("Completed"), status_text(driver)
    job_id = driver.find_element(By.ID, "job-id").text.strip()
    assert re.fullmatch(r"[0-9a-f-]{36}", job_id), job_id

    words = driver.find_elements(By.CSS_SELECTOR, "#transcript .word")
    heard = " ".join(w.text for w in words)
    log(f"heard: {heard!r}")
    # Speaker labels were asked for: one reader, one label on the segments.
    labels = {e.text for e in driver.find_elements(By.CSS_SELECTOR, "#transcript .speaker")}
    assert labels == {"SPEAKER_1"}, labels
    log(f"speaker labels shown: {sorted(labels)}")
    expected = collections.Counter(words_of(reference))
    got = collections.Counter(words_of(heard))
    found = sum(min(n, got[w]) for w, n in expected.items())
    share = found / sum(expected.values())
    log(f"{found} of {sum(expected.values())} reference words found ({share:.0%})")
    assert share >= 0.8, f"only {share:.0%} of the reference words are in the transcript"
    assert re.search(r"\d:\d\d\.\d", driver.find_element(By.ID, "transcript").text), "segments have no times"

    # 6. Clicking a word well into the recording seeks the player there and plays.
    wait(driver, 10, lambda d: js(d, "return document.getElementById('player').readyState") >= 1,
         "the player did not load the recording")
    duration = js(driver, "return document.getElementById('player').duration")
    assert abs(duration - 7.1) < 0.2, f"the player's duration is {duration}"
    index = (len(words) * 2) // 3
    target = words[index]
    start = float(target.get_attribute("data-start"))
    assert start > 2.0, f"word {index} starts at {start}, not well into the recording"
    js(driver, "arguments[0].scrollIntoView({block: 'center'});", target)
    target.click()
    now = js(driver, "return document.getElementById('player').currentTime")
    log(f"clicked {target.text!r} (starts at {start:.2f} s): player at {now:.2f} s")
    assert abs(now - start) <= 0.3, f"the player is at {now}, the word starts at {start}"
    time.sleep(0.8)
    playing = js(driver, "const p = document.getElementById('player'); return [p.paused, p.currentTime];")
    assert not playing[0] and playing[1] > now, f"the player did not play on from the word: {playing}"
    assert driver.find_elements(By.CSS_SELECTOR, "#transcript .word.current"), "no word is highlighted while playing"

    # The same from the keyboard: the clicked word has the focus; two to the right, then Enter.
    js(driver, "document.getElementById('player').pause();")
    assert driver.switch_to.active_element == target, "the clicked word did not take the focus"
    target.send_keys(Keys.ARROW_LEFT, Keys.ARROW_LEFT)
    focused = driver.switch_to.active_element
    assert focused == words[index - 2], "the arrow keys did not move between words"
    assert focused.get_attribute("tabindex") == "0"
    focused.send_keys(Keys.ENTER)
    keyed_start = float(focused.get_attribute("data-start"))
    now = js(driver, "return document.getElementById('player').currentTime")
    assert abs(now - keyed_start) <= 0.3, f"Enter on a word left the player at {now}, not {keyed_start}"
    time.sleep(0.3)
    js(driver, "document.getElementById('player').pause();")
    log(f"Enter on {focused.text!r} played from {keyed_start:.2f} s")

    # 7. Screenshots once the transcript is there: desktop 1280x900, then phone 390x844.
    viewport(driver, 1280, 900, mobile=False)
    js(driver, "window.scrollTo(0, 0);")
    screenshot(driver, "desktop.png")
    screenshot(driver, "desktop-full.png", full_page=True)

    # 8. The SRT download.
    driver.find_element(By.ID, "download-srt").click()
    srt_path = os.path.join(download_dir, job_id + ".srt")
    wait(driver, 15, lambda d: os.path.exists(srt_path) and os.path.getsize(srt_path) > 0, f"no {srt_path}")
    with open(srt_path, encoding="utf-8") as f:
        srt = f.read()
    assert "-->" in srt, srt
    log(f"downloaded {os.path.basename(srt_path)} ({len(srt)} bytes)")

    # 9. The key is in sessionStorage only.
    assert js(driver, f"return sessionStorage.getItem('{KEY_STORAGE}')") == KEY, "the key is not in sessionStorage"
    assert js(driver, "return localStorage.length") == 0, "localStorage is not empty"
    assert KEY not in js(driver, "return JSON.stringify(Object.assign({}, localStorage))")
    assert KEY not in driver.current_url
    assert KEY not in driver.page_source, "the key is in the page's HTML"
    assert not foreign_requests(driver), f"requests to elsewhere: {foreign_requests(driver)}"
    log("the key is in sessionStorage, not in localStorage, the URL or the page")

    # 10. The job is in the recent jobs.
    wait(driver, 10, lambda d: d.find_elements(By.CSS_SELECTOR, f'#jobs-list button[data-job-id="{job_id}"]'),
         "the job is not in the recent jobs")

    # 11. A phone: no horizontal scrolling; the transcript with its player in view.
    viewport(driver, 390, 844, mobile=True)
    overflow = js(driver, "return document.documentElement.scrollWidth")
    assert overflow <= 390, f"the page is {overflow} px wide on a 390 px screen"
    js(driver, "document.getElementById('result').scrollIntoView({block: 'start'});")
    time.sleep(0.3)
    screenshot(driver, "phone.png")
    screenshot(driver, "phone-full.png", full_page=True)
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})

    errors = severe_console_messages(driver)
    assert not errors, f"console errors: {errors}"

    # 12. Reloaded, the page uses the tab's key without asking; "Forget key" removes it.
    driver.get(BASE + "/")
    wait(driver, 10, lambda d: d.find_elements(By.CSS_SELECTOR, f'#jobs-list button[data-job-id="{job_id}"]'),
         "after a reload the recent jobs were not listed with the stored key")
    assert not driver.find_element(By.ID, "key-panel").is_displayed(), "the page asked again for a key it has"
    # A recent job opens with its transcript (no audio: the server does not send recordings back).
    driver.find_element(By.CSS_SELECTOR, f'#jobs-list button[data-job-id="{job_id}"]').click()
    wait(driver, 10, lambda d: d.find_elements(By.CSS_SELECTOR, "#transcript .word"), "the recent job did not open")
    assert driver.find_element(By.ID, "player-note").is_displayed()
    driver.find_element(By.ID, "forget-key").click()
    assert js(driver, f"return sessionStorage.getItem('{KEY_STORAGE}')") is None, "Forget key left the key"
    log("a reload reused the tab's key; a recent job opened; Forget key removed the key")
    return job_id


def test_docs(driver):
    driver.get(BASE + "/docs")
    if not driver.find_elements(By.ID, "swagger-ui"):
        log("/docs serves the static reference (Swagger UI is not installed); skipped")
        return
    wait(driver, 20, lambda d: "Steno" in " ".join(e.text for e in d.find_elements(By.CSS_SELECTOR, ".swagger-ui .info .title")),
         "Swagger UI did not render the document")
    assert driver.find_elements(By.CSS_SELECTOR, ".swagger-ui .opblock"), "no operations"
    assert driver.find_elements(By.CSS_SELECTOR, ".swagger-ui button.authorize"), "no Authorize button"
    assert not foreign_requests(driver), f"requests to elsewhere: {foreign_requests(driver)}"
    assert js(driver, "return localStorage.length") == 0, "Swagger UI stored something in localStorage"
    log(f"/docs: Swagger UI shows {len(driver.find_elements(By.CSS_SELECTOR, '.swagger-ui .opblock'))} operations")
    driver.get(BASE + "/docs/reference")
    assert "transcribe" in driver.page_source
    log("/docs/reference answers")


def main():
    os.makedirs(SCREENSHOTS, exist_ok=True)
    download_dir = tempfile.mkdtemp(prefix="steno-downloads-")
    driver = make_driver(download_dir)
    try:
        test_page(driver, download_dir)
        test_docs(driver)
    except BaseException:
        traceback.print_exc()
        try:
            driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
            screenshot(driver, "failure.png", full_page=True)
            for entry in driver.get_log("browser"):
                print("console:", entry.get("level"), entry.get("message"), file=sys.stderr)
        except Exception:  # noqa: BLE001 - best effort after a failure
            pass
        log("FAILED")
        return 1
    finally:
        driver.quit()
    log("passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
