"""Run the outreach service: `python -m services.outreach`."""

from services.outreach.app import build_spec
from services.outreach.settings import OutreachSettings
from shared.runner import run

run(lambda: build_spec(OutreachSettings()))
