"""The refresh's statements as text: what the reads rely on them to produce."""

from __future__ import annotations

import re

from services.reporting.domain.figures import CAMPAIGN_METRICS
from services.reporting.store.refresh import CAMPAIGN_PART_METRICS, CAMPAIGN_PARTS


def test_the_campaign_facts_metrics_are_listed_for_the_all_campaigns_read():
    """A stored node's all-campaigns figures of the campaign facts are its campaigns' rows summed when read, for the
    metrics CAMPAIGN_PART_METRICS names: a metric missing there would read 0 for all campaigns."""
    quoted = set(re.findall(r"'([a-z_]+)'", CAMPAIGN_PARTS)) - {"completed", "missed"}  # the visit statuses
    assert quoted == set(CAMPAIGN_PART_METRICS)
    assert set(CAMPAIGN_PART_METRICS) <= CAMPAIGN_METRICS
