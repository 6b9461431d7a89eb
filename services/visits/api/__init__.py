"""HTTP routes of the visits service: thin routers (parse, authorize, call one use case)."""

from services.visits.api import assignments, campaigns, checklists, me, visits

ROUTERS = [checklists.router, campaigns.router, assignments.router, me.router, visits.router]
