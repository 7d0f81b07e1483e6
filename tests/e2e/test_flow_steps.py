"""A failing step of a browser flow skips the rest of the flow, naming the step (no browser).

The steps run in a pytester session whose conftest takes the hooks of tests/e2e/conftest.py
and stands in a plain object for the ``ui`` fixture.
"""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

CONFTEST = """
import pytest
from tests.e2e.conftest import pytest_runtest_makereport, pytest_runtest_setup

@pytest.fixture(scope="module")
def ui():
    return object()
"""


def test_a_failed_step_skips_the_rest_of_its_flow_only(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(
        test_flow="""
        def test_01_enrol(ui): pass
        def test_02_add_patient(ui): assert False, "the real failure"
        def test_03_sync(ui): pass
        def test_04_no_ui(): pass
        """,
        test_other_flow="""
        def test_01_enrol(ui): pass
        """,
    )
    result = pytester.runpytest("-rs", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, failed=1, skipped=1)
    result.stdout.fnmatch_lines(
        ["SKIPPED*test_flow.py*an earlier step of this flow failed: test_02_add_patient"]
    )


def test_a_failed_setup_skips_the_rest_too(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(
        test_flow="""
        import pytest

        @pytest.fixture
        def broken():
            raise RuntimeError("no server")

        def test_01_enrol(ui, broken): pass
        def test_02_sync(ui): pass
        """
    )
    result = pytester.runpytest("-rs", "-p", "no:cacheprovider")
    result.assert_outcomes(errors=1, skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED*an earlier step of this flow failed: test_01_enrol"])
