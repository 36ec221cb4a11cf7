"""The report page in a real browser: headless Chromium renders a small page offline, with its
figures drawn (skips with a reason where no Chromium is installed)."""

from __future__ import annotations

from suite.report.make import make_report
from tests.support import report_files as R
from tests.support.browser import need_chromium, screenshot, share_near

ORANGE = (255, 127, 14)  # matplotlib's second line colour (tab10): only the figures use it
WHITE = (255, 255, 255)


def test_small_report_page_renders_with_its_figures(tmp_path):
    need_chromium()
    R.write_results(tmp_path / "run")
    page = make_report([tmp_path / "run"], html=tmp_path / "report.html").page
    shot = screenshot(page, tmp_path / "shot.png", tmp_path / "profile")
    assert shot.shape == (2000, 1280, 3)
    assert share_near(shot, WHITE) < 0.98  # not a blank page (this one: about 94% near-white background)
    # the training curves (second run in orange) are near the top: the embedded PNG was decoded
    assert share_near(shot, ORANGE) > 1e-4
