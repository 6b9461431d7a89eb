"""Run the committees service: `python -m services.committees`."""

from services.committees.app import build_spec
from services.committees.settings import Settings
from shared.runner import run

run(lambda: build_spec(Settings()))
