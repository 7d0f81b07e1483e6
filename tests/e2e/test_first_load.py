"""The app's first load in Chromium, served as ``make run`` serves it (issue 13).

What the browser moves over the network up to the first screen (compressed, as served) stays
under 7 MB, no request leaves the machine, and the console shows no error. Measured by
``benchmarks.web.first_load`` (Chromium's own count of the bytes received). No timings: the
machine is shared.
"""

from __future__ import annotations

import pytest

from benchmarks.web import first_load

pytestmark = pytest.mark.browser
MAX_MB = 7.0  # MB = 1e6 bytes; flet_web alone moved 17.7


def test_first_screen_loads_compressed_and_offline(chromium_path: str, liaison_app: str) -> None:
    result = first_load(liaison_app, chromium=chromium_path)
    assert result["offsite_requests"] == 0, result["offsite"]
    assert result["web_first_load_mb"] <= MAX_MB, result
    # Not even rive's runtime, which the app does not use: app.web serves a stand-in (it was
    # a request to a CDN, then a 404 on the app's own origin).
    assert result["console_errors"] == []
