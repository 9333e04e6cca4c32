"""The explorer in a real headless Chromium (Debian's chromium + chromium-driver, driven by selenium):
seed cases through the controls and through URLs, the shown sizes, windows and equivalent arguments
against tconv's API, hovering a cell, the animation, and screenshots that show a drawn grid.

Skipped, with the reason printed (pytest -rs), where no chromium or chromedriver is installed.
"""
from __future__ import annotations

import io
import os
import shutil
import tempfile
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

import tconv
from tconv.serve import _api

# TCONV_CHROMIUM / TCONV_CHROMEDRIVER point elsewhere (a path that does not exist shows the skip)
_CANDIDATES = [os.environ["TCONV_CHROMIUM"]] if os.environ.get("TCONV_CHROMIUM") else ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
CHROMIUM = next((p for p in _CANDIDATES if Path(p).exists()), None)
DRIVER = os.environ.get("TCONV_CHROMEDRIVER", "/usr/bin/chromedriver")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[test]')")
if CHROMIUM is None or not Path(DRIVER).exists():
    pytest.skip(f"no chromium ({CHROMIUM or 'not found'}) or chromedriver ({DRIVER}): "
                "apt-get install chromium chromium-driver (.ci/run does)", allow_module_level=True)

from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

PIL = pytest.importorskip("PIL.Image")


@pytest.fixture(scope="module")
def base():
    srv, _thread, url = tconv.serve.start(0)
    yield url.rstrip("/")
    srv.shutdown()
    srv.server_close()


@pytest.fixture(scope="module")
def browser():
    profile = tempfile.mkdtemp(prefix="tconv-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                f"--user-data-dir={profile}", "--window-size=1500,1100"):
        options.add_argument(arg)
    # the driver's path is given, so selenium-manager never downloads one
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def by_testid(driver, name):
    return driver.find_element(By.CSS_SELECTOR, f'[data-testid="{name}"]')


def wait_for(driver, name, text=None, timeout=15):
    """The element's text once it is `text` (or once it is not empty and not '?')."""
    def ready(d):
        value = by_testid(d, name).text
        return value if (value == text if text is not None else value not in ("", "?")) else False
    try:
        return WebDriverWait(driver, timeout).until(ready)
    except Exception:
        raise AssertionError(f"{name} shows {by_testid(driver, name).text!r}, expected {text!r}; "
                             f"error box: {by_testid(driver, 'error').text!r}") from None


def api(query: dict) -> dict:
    """What the API computes for a state, from tconv itself (not over HTTP)."""
    return _api.answer(query)


def size(shape) -> str:
    return "x".join(map(str, shape))


def check_page_against_tconv(driver, query):
    input_shape, kernel, framework, args = _api.read_layer(query)
    geom = tconv.geometry(input_shape, kernel, framework, **args)
    wait_for(driver, "output-size", size(geom.output_shape))
    assert by_testid(driver, "window").text == " × ".join(f"full[{a}:{b}]" for a, b in (ax.kept for ax in geom))
    assert by_testid(driver, "full-size").text == size(geom.full_shape)
    for target in ("pytorch", "keras", "onnx"):
        if target == framework:
            continue
        want = tconv.convert(input_shape, kernel, framework, target, **args).args
        shown = by_testid(driver, f"convert-{target}").text
        assert shown == ", ".join(f"{k}={v!r}" for k, v in want.items())
    steps = driver.find_elements(By.CSS_SELECTOR, "#steps > li")
    assert [s.get_attribute("data-key") for s in steps] == [s.key for s in tconv.explain(input_shape, kernel, framework, **args).steps]


@pytest.mark.parametrize("seed", [s for s in _api.SEEDS if s["id"] in ("001", "002", "004")], ids=lambda s: s["id"])
def test_seed_urls_reproduce_the_view(browser, base, seed):
    query = "&".join(f"{k}={v}" for k, v in seed["query"].items())
    browser.get(f"{base}/?{query}")
    check_page_against_tconv(browser, seed["query"])


def test_the_issue_url_gives_16x16(browser, base):
    browser.get(f"{base}/?framework=keras&input=8x8&kernel=3&stride=2&padding=same")
    assert wait_for(browser, "output-size") == "16x16"
    assert "strides=2" in by_testid(browser, "steps").text or "16" in by_testid(browser, "formula").text
    assert "keras.layers.Conv2DTranspose" in by_testid(browser, "code").text


def test_seed_buttons_set_the_controls_and_the_url(browser, base):
    browser.get(f"{base}/")
    wait_for(browser, "output-size")
    for seed in _api.SEEDS:
        by_testid(browser, f"seed-{seed['id']}").click()
        check_page_against_tconv(browser, seed["query"])
        url = parse_qs(urlsplit(browser.current_url).query)
        assert {k: v[0] for k, v in url.items()} == {**seed["query"], "view": seed["query"].get("view", "scatter")}


def test_typed_values_are_kept_or_refused_with_the_rule(browser, base):
    browser.get(f"{base}/?framework=pytorch&input=4x4&kernel=3&stride=2")
    wait_for(browser, "output-size", "9x9")
    box = by_testid(browser, "kernel")
    box.clear()
    box.send_keys("9", Keys.ENTER)  # the slider ends at 7: kept as typed, never clamped
    wait_for(browser, "output-size", size(tconv.output_shape((4, 4), 9, "pytorch", stride=2)))
    assert "kernel 9 is beyond the slider's 7: kept as typed" in by_testid(browser, "range-note").text
    assert browser.find_element(By.ID, "kernel-range").get_attribute("value") == "7"
    assert by_testid(browser, "kernel").get_attribute("value") == "9"
    pad = by_testid(browser, "output_padding")
    pad.clear()
    pad.send_keys("2", Keys.ENTER)  # output_padding must be smaller than the stride: refused with PyTorch's rule
    error = WebDriverWait(browser, 10).until(lambda d: by_testid(d, "error").text)
    with pytest.raises(tconv.ConfigError) as refused:
        tconv.geometry((4, 4), 9, "pytorch", stride=2, output_padding=2)
    assert error == str(refused.value)


def test_hovering_an_output_cell_shows_its_inputs_taps_and_formula(browser, base):
    query = {"framework": "pytorch", "input": "3x3", "kernel": "3", "stride": "2", "padding": "1", "view": "numbers"}
    browser.get(f"{base}/?" + "&".join(f"{k}={v}" for k, v in query.items()))
    wait_for(browser, "output-size", "5x5")
    cell = by_testid(browser, "out-1-2")
    ActionChains(browser).move_to_element(cell).perform()
    expected = api(query)["cells"]["cells"][1][2]
    WebDriverWait(browser, 5).until(lambda d: by_testid(d, "cell-formula").text == expected["formula"])
    lit_inputs = browser.find_elements(By.CSS_SELECTOR, "#hover-input .gcell.lit")
    lit_taps = browser.find_elements(By.CSS_SELECTOR, "#hover-kernel .gcell.lit")
    assert sorted((int(e.get_attribute("data-r")), int(e.get_attribute("data-c"))) for e in lit_inputs) == \
        sorted(map(tuple, expected["inputs"]))
    assert len(lit_taps) == len(expected["taps"])
    # the formula's sum is the value real numbers mode shows in the last frame
    assert expected["formula"].endswith("= " + api(query)["drawing"]["frames"][-1]["panels"][-1]["text"][1][2])


def test_views_and_the_animation(browser, base):
    browser.get(f"{base}/?framework=pytorch&input=4&kernel=3&stride=2&padding=1&view=phase")
    wait_for(browser, "output-size", "7")
    frames = api({"framework": "pytorch", "input": "4", "kernel": "3", "stride": "2", "padding": "1", "view": "phase"})
    titles = [f["title"] for f in frames["drawing"]["frames"]]
    assert by_testid(browser, "frame-title").text == titles[1]  # the phase view opens on its first phase
    by_testid(browser, "step").click()
    assert by_testid(browser, "frame-title").text == titles[2]
    assert by_testid(browser, "frame-no").text == f"frame 3 of {len(titles)}"
    by_testid(browser, "last").click()
    by_testid(browser, "step").click()  # from the last frame, step wraps to the first
    assert by_testid(browser, "frame-title").text == titles[0]
    by_testid(browser, "play").click()
    WebDriverWait(browser, 10).until(lambda d: by_testid(d, "frame-title").text == titles[-1])
    for view in _api.VIEWS:
        by_testid(browser, f"view-{view}").click()
        WebDriverWait(browser, 10).until(lambda d: parse_qs(urlsplit(d.current_url).query).get("view") == [view])
        WebDriverWait(browser, 10).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#picture svg rect.cell"))


def _screenshot(browser) -> "PIL.Image":
    return PIL.open(io.BytesIO(browser.get_screenshot_as_png())).convert("RGB")


def test_screenshot_shows_a_drawn_grid(browser, base, tmp_path):
    browser.get(f"{base}/?framework=keras&input=4x4&kernel=3&stride=2&padding=same&view=scatter")
    wait_for(browser, "output-size", "8x8")
    WebDriverWait(browser, 10).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#picture svg rect.cell"))
    image = _screenshot(browser)
    image.save(tmp_path / "explorer.png")
    colours = image.getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 50, "the page looks blank"
    counts = {rgb: n for n, rgb in colours}
    sky, orange = counts.get((0x56, 0xB4, 0xE9), 0), counts.get((0xE6, 0x9F, 0x00), 0)
    assert sky > 2000 and orange > 1000, f"input ({sky} px) and kernel ({orange} px) cells not drawn"
    # as many cells as tconv's frames hold, one SVG rect each
    shown = len(browser.find_elements(By.CSS_SELECTOR, "#picture svg rect.cell"))
    frame = api({"framework": "keras", "input": "4x4", "kernel": "3", "stride": "2", "padding": "same"})["drawing"]["frames"][-1]
    assert shown == sum(p["rows"] * p["cols"] for p in frame["panels"])


def test_a_large_layer_is_summarised_in_the_page(browser, base):
    browser.get(f"{base}/?framework=keras&input=96x128&kernel=3&stride=3&padding=same")
    wait_for(browser, "output-size", "288x384")
    WebDriverWait(browser, 10).until(lambda d: d.find_elements(By.CSS_SELECTOR, '[data-testid="summary"]'))
    assert "too large to draw cell by cell" in by_testid(browser, "summary").text


def test_one_d_hides_the_cols_slider_and_keeps_the_framework_names(browser, base):
    browser.get(f"{base}/?framework=onnx&input=6&kernel=4&stride=2&padding=SAME_LOWER&view=resize")
    wait_for(browser, "output-size", "12")
    assert not browser.find_element(By.ID, "cols").is_displayed()
    assert browser.find_element(By.ID, "padding-label").text == "pads"  # ONNX's own name
    assert "box-filtered kernel" in by_testid(browser, "frame-title").text
    browser.find_element(By.ID, "dims-2").click()  # 1-D -> 2-D keeps the size on both axes
    wait_for(browser, "output-size", "12x12")
    assert parse_qs(urlsplit(browser.current_url).query)["input"] == ["6x6"]


def test_numbers_in_the_phase_view_are_real_torch(browser, base, torch):
    browser.get(f"{base}/?framework=pytorch&input=3x3&kernel=3&stride=2&padding=1&output_padding=1&view=phase")
    wait_for(browser, "output-size", "6x6")
    browser.find_element(By.CSS_SELECTOR, '[data-testid="numbers"]').click()
    WebDriverWait(browser, 10).until(lambda d: parse_qs(urlsplit(d.current_url).query).get("numbers") == ["1"])
    by_testid(browser, "last").click()
    WebDriverWait(browser, 10).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#picture svg text"))
    shown = [t.text for t in browser.find_elements(By.CSS_SELECTOR, '[data-testid="panel-1"] svg g text')]
    from tconv.drawing import _scene as sc
    x, w = sc.default_values((3, 3), 4), sc.default_values((3, 3), 2)
    F = torch.nn.functional
    t = lambda a: torch.tensor(a, dtype=torch.float64)[None, None]  # noqa: E731
    real = F.conv_transpose2d(t(x), t(w), stride=2, padding=1, output_padding=1)[0, 0].numpy()
    assert [int(v) for v in shown] == [int(v) for v in real.ravel()]
