"""Webmail in Debian's Chromium, driven through chromedriver (python3-selenium).

Usage: browser.py BASE_URL OUT_DIR SENDER RECIPIENT PASSWORD XSS_SUBJECT

Logs in as SENDER (after a refused wrong password), sends a PEC with an attachment to
RECIPIENT, watches the acceptance and the delivery receipt appear on the sent message's
timeline, logs in as RECIPIENT, opens the envelope (the original with its attachment, the
daticert box, a valid signature), downloads the attachment, and checks that the XSS
attempts already in RECIPIENT's mailbox render inert. Screenshots at 1280 and 360 px go to
OUT_DIR. Prints one line per check and ends with "N passed, N failed".
"""

import os
import sys
import tempfile
import time

from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

base, out, sender, recipient, password, xss_subject = sys.argv[1:7]
os.makedirs(out, exist_ok=True)
downloads = tempfile.mkdtemp(prefix="pec-downloads-")
profile = tempfile.mkdtemp(prefix="pec-chromium-")
attachment = os.path.join(tempfile.mkdtemp(), "relazione-tecnica.txt")
with open(attachment, "w") as f:
    f.write("Allegato di prova del browser\n")

opts = webdriver.ChromeOptions()
opts.binary_location = "/usr/bin/chromium"
for flag in [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    f"--user-data-dir={profile}",
    # The gestore's certificate comes from its own development CA.
    "--ignore-certificate-errors",
    "--window-size=1280,900",
]:
    opts.add_argument(flag)
opts.add_experimental_option("prefs", {
    "download.default_directory": downloads,
    "download.prompt_for_download": False,
})
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
driver.set_page_load_timeout(30)
passed, failed = 0, 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
        print("ok", what, flush=True)
    else:
        failed += 1
        print("FAIL", what, "--", driver.current_url, flush=True)


def shot(name):
    for width in (1280, 360):
        driver.set_window_size(width, 900)
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(width, max(600, min(height + 40, 4000)))
        driver.save_screenshot(os.path.join(out, f"{name}-{width}.png"))
        # Nothing wider than the window: the layout works at this width.
        wide = driver.execute_script(
            "return document.documentElement.scrollWidth > window.innerWidth + 1")
        check(not wide, f"{name} fits {width} px without horizontal scrolling")
    driver.set_window_size(1280, 900)


def no_alert(where):
    try:
        driver.switch_to.alert
        check(False, f"no script ran on {where}")
    except NoAlertPresentException:
        check(True, f"no script ran on {where}")


def wait_url(fragment, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline and fragment not in driver.current_url:
        time.sleep(0.1)
    return fragment in driver.current_url


def submit(selector):
    """Clicks a submit button and waits for the next page."""
    old = driver.find_element(By.TAG_NAME, "html")
    driver.find_element(By.CSS_SELECTOR, selector).click()
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            old.tag_name
            time.sleep(0.1)
        except Exception:
            return


def login(user, pw):
    driver.get(base + "/login")
    driver.find_element(By.NAME, "address").send_keys(user)
    driver.find_element(By.NAME, "password").send_keys(pw)
    submit("form[action='/login'] button")


def logout():
    submit("form[action='/logout'] button")


try:
    login(sender, "wrong-password")
    check("Wrong address or password" in driver.page_source, "a wrong password is refused")
    login(sender, password)
    check(wait_url("/mail?f=INBOX"), "login lands on the inbox")
    check(driver.find_elements(By.ID, "quota"), "the quota bar is shown")
    shot("inbox")

    driver.get(base + "/compose")
    driver.find_element(By.NAME, "to").send_keys(recipient)
    driver.find_element(By.NAME, "subject").send_keys("Relazione dal browser")
    driver.find_element(By.NAME, "body").send_keys("Buongiorno,\nin allegato la relazione.")
    driver.find_element(By.NAME, "attachments").send_keys(attachment)
    driver.find_element(By.CSS_SELECTOR, "select[name=receipt] option[value=completa]").click()
    shot("compose")
    submit("form[action='/compose'] button")
    check(wait_url("/message?f=Sent"), "sending lands on the sent message")

    deadline = time.time() + 60
    while time.time() < deadline:
        timeline = driver.find_element(By.ID, "timeline").text
        if "Accettato" in timeline and "Consegnato" in timeline:
            break
        time.sleep(0.5)
        driver.refresh()
    timeline = driver.find_element(By.ID, "timeline").text
    check("Accettato / Accepted" in timeline, "the acceptance is on the timeline")
    check("Consegnato / Delivered (ricevuta completa)" in timeline,
          "the delivery receipt (completa) is on the timeline")
    check(recipient in timeline, "the timeline names the recipient")
    shot("timeline")
    logout()

    login(recipient, password)
    driver.get(base + "/mail?f=INBOX")
    shot("recipient-inbox")
    link = driver.find_element(By.LINK_TEXT, "POSTA CERTIFICATA: Relazione dal browser")
    link.click()
    wait_url("/message?")
    page = driver.page_source
    check("inside the PEC transport envelope" in page, "the envelope shows the original")
    check("in allegato la relazione." in driver.find_element(By.ID, "body").text,
          "the original's text is shown")
    check("Firma valida" in driver.find_element(By.ID, "signature").text,
          "the signature is valid and names the provider")
    check("posta-certificata" in driver.find_element(By.ID, "daticert").text,
          "the daticert box is shown")
    shot("envelope")
    driver.find_element(By.LINK_TEXT, "relazione-tecnica.txt").click()
    target = os.path.join(downloads, "relazione-tecnica.txt")
    deadline = time.time() + 15
    while time.time() < deadline and not os.path.exists(target):
        time.sleep(0.2)
    check(os.path.exists(target) and open(target).read() == "Allegato di prova del browser\n",
          "the original's attachment downloads unchanged")

    # XSS attempts: a PEC whose subject, text and attachment name carry markup, and an
    # ordinary HTML mail (shown inside its anomaly envelope).
    driver.get(base + "/mail?f=INBOX")
    no_alert("the message list")
    check("<img src=x" not in driver.find_element(By.TAG_NAME, "main").get_attribute("innerHTML"),
          "the subject is escaped in the list")
    driver.find_element(By.PARTIAL_LINK_TEXT, xss_subject[:20]).click()
    wait_url("/message?")
    no_alert("the message with markup in its subject, text and attachment name")
    main = driver.find_element(By.TAG_NAME, "main")
    check(not main.find_elements(By.CSS_SELECTOR, "img, script, svg"),
          "no element came from the message's subject, text or file name")
    check("onerror" in main.text and "<script>" in main.text, "the markup shows as text")
    shot("xss")
    driver.get(base + "/mail?f=INBOX")
    driver.find_element(By.PARTIAL_LINK_TEXT, "Newsletter HTML").click()
    wait_url("/message?")
    no_alert("the sanitised HTML message")
    html_body = driver.find_elements(By.CSS_SELECTOR, ".html-body")
    check(html_body and "Offerta" in html_body[0].text, "the HTML body is shown")
    check(html_body and not html_body[0].find_elements(
        By.CSS_SELECTOR, "script, iframe, [onerror], [onclick], form, style"),
        "scripts, frames, handlers and forms are removed")
    remote = driver.execute_script(
        "return [...document.images].filter(i => /^https?:/.test(i.getAttribute('src') || '')).length")
    check(remote == 0, "no remote image is loaded")
    check(driver.execute_script("return window.__xss === undefined"), "no injected script ran")
    shot("html-mail")
finally:
    driver.quit()

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
