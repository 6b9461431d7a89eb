"""Run the reporting service: `python -m services.reporting`."""

from services.reporting.app import build_spec
from services.reporting.settings import ReportingSettings
from shared.runner import run

run(lambda: build_spec(ReportingSettings()))
