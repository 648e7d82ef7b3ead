"""The web page of `cnnlab serve` in a real headless Chromium (Selenium with Debian's chromium
and chromium-driver, which .ci/run installs): a photograph is uploaded, the right class
appears, the Grad-CAM image loads, on a phone-width screen, with no console error; for a
segmentation run, the mask over the photograph instead."""
from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
from PIL import Image

CHROMIUM = Path("/usr/bin/chromium")
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
if not (CHROMIUM.exists() and Path(DRIVER).exists()):
    pytest.skip("needs /usr/bin/chromium and chromedriver (apt-get install chromium-driver)",
                allow_module_level=True)
selenium = pytest.importorskip("selenium")
pytest.importorskip("fastapi", reason="the serve extra is not installed")

from selenium import webdriver  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from cnnlab.bench.serve_load import service  # noqa: E402
from cnnlab.course.kernels import sample_image  # noqa: E402

CATS = {"tiger cat", "tabby", "Egyptian cat"}


@pytest.fixture
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                 "--window-size=390,844"):  # a phone's width
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # The driver named explicitly: Selenium must never go looking for one on the network.
    driver = webdriver.Chrome(options=options,
                              service=webdriver.ChromeService(executable_path=DRIVER))
    yield driver
    driver.quit()


@pytest.mark.slow
def test_a_photograph_gets_its_class_and_heat_map_in_the_browser(browser, tmp_path):
    photo = tmp_path / "chelsea.jpg"
    buffer = io.BytesIO()
    Image.fromarray(sample_image("chelsea")).save(buffer, "JPEG", quality=90)
    photo.write_bytes(buffer.getvalue())
    with service("--pretrained", "efficientnet_lite0") as running:
        browser.get(running.url + "/")
        wait = WebDriverWait(browser, 120)
        wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "#model option"))
        browser.find_element(By.ID, "file").send_keys(str(photo))
        wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "#top li .class"))
        top = browser.find_element(By.CSS_SELECTOR, "#top li .class").text
        assert top in CATS
        wait.until(lambda b: b.execute_script(
            "const c = document.getElementById('cam'); return c.complete && c.naturalWidth > 0;"))
        assert browser.find_element(By.ID, "status").text == "Done."
        width = browser.execute_script("return [document.documentElement.scrollWidth, "
                                       "window.innerWidth];")
        assert width[0] <= width[1]  # nothing wider than the phone's screen
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == []


@pytest.mark.slow
def test_a_segmentation_run_shows_the_mask_over_the_photograph(browser, tmp_path):
    from cnnlab.cli.main import main
    run = tmp_path / "segment"
    assert main(["train", "--task", "segment", "--model", "unet", "--dataset", "shapes",
                 "--epochs", "1", "--limit-batches", "1", "--batch-size", "16",
                 "--model-kwargs", "width=4", "depth=2", "--quiet", "--out", str(run)]) == 0
    photo = tmp_path / "chelsea.png"
    Image.fromarray(sample_image("chelsea")).resize((96, 64)).save(photo)
    with service(str(run)) as running:
        browser.get(running.url + "/")
        wait = WebDriverWait(browser, 120)
        wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "#model option"))
        browser.find_element(By.ID, "file").send_keys(str(photo))
        wait.until(lambda b: b.find_element(By.ID, "status").text == "Done.")
        pictures = browser.execute_script(
            "return [...document.querySelectorAll('#pictures img')].map("
            "(i) => [i.alt, i.complete ? i.naturalWidth : 0]);")
        assert ["the mask over the image", 96] in pictures
        assert browser.find_element(By.ID, "camfigure").is_displayed() is False
        assert browser.find_elements(By.CSS_SELECTOR, "#top li .class")  # its classes' shares
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == []
