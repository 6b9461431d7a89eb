"""Run the visits service: `python -m services.visits`."""

from services.visits.app import build_spec
from services.visits.settings import VisitsSettings
from shared.runner import run

run(lambda: build_spec(VisitsSettings()))
