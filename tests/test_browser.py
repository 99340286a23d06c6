"""Maps and the report in a real headless Chromium with the network blocked.

Needs Debian's chromium (``/usr/bin/chromium``, installed by ``.ci/run``) and Playwright for
Python (test extra); skips with the reason when either is missing.
"""

from __future__ import annotations

import io
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from servicecircle.plan import packaged_data, run_scenario

    out = tmp_path_factory.mktemp("scenario")
    run_scenario(packaged_data("demo_scenario.toml"), out_dir=out)
    return out


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium; .ci/run does it)")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="Playwright for Python is a test extra"
    )
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def open_offline(browser, path: Path):
    """Open a file with every non-file request refused; return (page, js_errors, blocked)."""
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    errors: list[str] = []
    blocked: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on(
        "console",
        lambda m: (
            errors.append(m.text)
            if m.type == "error" and "Failed to load resource" not in m.text
            else None
        ),
    )

    def route(r):
        if r.request.url.startswith(("file:", "data:")):
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.goto(path.as_uri())
    page.wait_for_timeout(800)
    return page, errors, blocked


def not_blank(png: bytes) -> bool:
    import matplotlib.image as mpimg

    img = mpimg.imread(io.BytesIO(png), format="png")[..., :3]
    colours = np.unique((img.reshape(-1, 3) * 255).astype(int), axis=0)
    return img.std() > 0.05 and len(colours) > 50


def test_map_works_offline_layers_toggle(browser, run_dir, tmp_path):
    page, errors, blocked = open_offline(browser, run_dir / "coverage_map.html")
    assert errors == []
    assert page.evaluate("typeof L") == "object"
    names = page.evaluate("Object.keys(window).filter(k => k.startsWith('map_'))")
    assert len(names) == 1
    labels = page.locator(".leaflet-control-layers-overlays label")
    # boundary, cells, 2 service areas, 2 circles, 2 tiers, facilities, proposals
    assert labels.count() == 10
    count_layers = f"Object.keys({names[0]}._layers).length"
    before = page.evaluate(count_layers)
    label = labels.filter(has_text="centre_15min: ")  # off by default; the 5-minute tier is on
    label.locator("input").click()
    page.wait_for_timeout(200)
    after = page.evaluate(count_layers)
    assert after > before + 100  # every demand point of the second tier is drawn now
    label.locator("input").click()
    page.wait_for_timeout(200)
    assert page.evaluate(count_layers) == before
    shot = page.screenshot(path=str(tmp_path / "map.png"))
    assert not_blank(shot)
    # only tiles were asked for from outside, and refused; the map drew anyway
    assert all("tile.openstreetmap.org" in u for u in blocked)
    page.close()


def test_map_without_tiles_and_in_english(browser, tmp_path):
    from servicecircle.cli import main

    assert (
        main(["-q", "coverage", "demo", "--tiles", "none", "--lang", "en", "--out", str(tmp_path)])
        == 0
    )
    page, errors, blocked = open_offline(browser, tmp_path / "coverage_map.html")
    assert errors == [] and blocked == []
    assert "covered" in page.locator("#sc-legend").inner_text()
    assert "OpenStreetMap contributors" in page.locator(".leaflet-control-attribution").inner_text()
    assert not_blank(page.screenshot())
    page.close()


def test_report_opens_offline(browser, run_dir):
    page, errors, blocked = open_offline(browser, run_dir / "report.html")
    assert errors == [] and blocked == []
    assert page.locator("table").count() >= 3
    ok = page.evaluate("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
    assert ok
    page.close()


def test_html_references_no_external_url_but_tiles(run_dir):
    html = (run_dir / "coverage_map.html").read_text()
    for tag in re.findall(r"<(?:script|link|img)[^>]*>", html):
        assert "http://" not in tag and "https://" not in tag, tag
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", html))
    allowed = (
        "https://tile.openstreetmap.org/",
        "http://www.w3.org/",
        "https://leafletjs.com",
        "https://bugs.chromium.org/",
        "https://bugzilla.mozilla.org/",
        "https://www.openstreetmap.org/copyright",
    )
    assert all(u.startswith(allowed) for u in urls), urls - {
        u for u in urls if u.startswith(allowed)
    }
    report = (run_dir / "report.html").read_text()
    assert not re.findall(r"(?:src|href)=[\"']https?://", report)
