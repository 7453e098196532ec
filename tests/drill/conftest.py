import pytest

from tests.emulation.fixtures import aws, emulator

__all__ = ["aws", "emulator"]


@pytest.fixture(autouse=True)
def _drill_reports_in_tmp(tmp_path_factory: pytest.TempPathFactory,
                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A drill run by a test leaves its JSON and HTML reports in a temp dir, not in the
    repository's drill-reports/ (a test that wants them passes --report-dir)."""
    from caresync_dr.drill.report import REPORTS_ENV

    monkeypatch.setenv(REPORTS_ENV, str(tmp_path_factory.mktemp("drill-reports")))
