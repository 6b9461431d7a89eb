"""Cooperation routes: parent committees, parent schools, instructor teams, lecturers and lectures."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1", tags=["cooperation"])
