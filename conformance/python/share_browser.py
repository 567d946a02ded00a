"""A share link's recipient in headless Chromium (Selenium driving Debian's ChromeDriver).

Usage: share_browser.py DOWNLOAD_URL PASSWORD UPLOAD_URL FILE

Opens the password-protected download link, sends a wrong password and then the right one,
reads the page's file name and size, fetches the download button's target with the page's
cookie, then uploads FILE through the upload-only link's form. Prints one JSON object.
"""

import json
import sys

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait


def main():
    download_url, password, upload_url, path = sys.argv[1:5]
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        opts.add_argument(a)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    out = {}
    try:
        wait = WebDriverWait(driver, 20)
        driver.get(download_url)
        field = wait.until(EC.presence_of_element_located((By.ID, "password")))
        out["form_shown"] = True
        field.send_keys("not it")
        driver.find_element(By.ID, "unlock").click()
        wait.until(EC.presence_of_element_located((By.ID, "error")))
        out["wrong_password_error"] = "Wrong password" in driver.find_element(By.ID, "error").text
        driver.find_element(By.ID, "password").send_keys(password)
        driver.find_element(By.ID, "unlock").click()
        wait.until(EC.presence_of_element_located((By.ID, "download")))
        out["name"] = driver.find_element(By.ID, "name").text
        out["size"] = driver.find_element(By.ID, "size").get_attribute("data-bytes")
        href = driver.find_element(By.ID, "download").get_attribute("href")
        out["downloaded"] = driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "fetch(arguments[0]).then(r => r.text()).then(done, e => done('error: ' + e));",
            href,
        )
        driver.get(upload_url)
        wait.until(EC.presence_of_element_located((By.ID, "file"))).send_keys(path)
        driver.find_element(By.ID, "upload").click()
        wait.until(lambda d: d.find_element(By.ID, "status").get_attribute("data-state"))
        out["upload_status"] = driver.find_element(By.ID, "status").get_attribute("data-state")
        out["upload_text"] = driver.find_element(By.ID, "status").text
    finally:
        driver.quit()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
