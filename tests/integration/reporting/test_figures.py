"""A scripted campaign, published as real contract events, yields exactly the hand-counted figures."""

from __future__ import annotations

import random

import pytest

from tests.integration.reporting import scenario
from tests.integration.reporting.expected import EXPECTED, mismatches

pytestmark = pytest.mark.integration


async def assert_expected(reporting, campaign_id: str = scenario.CAMPAIGN) -> None:
    for path in EXPECTED:
        doc = await reporting.summary(path, campaign_id)
        assert mismatches(path, doc["figures"]) == {}, path


async def test_scripted_campaign_yields_exact_figures_at_every_level(reporting):
    messages = scenario.envelopes(scenario.all_events())
    await scenario.publish(reporting.settings, messages)
    await reporting.converge(messages)
    await assert_expected(reporting)
    # All campaigns together equal the only campaign here.
    await assert_expected(reporting, "")


async def test_duplicates_and_reordering_change_nothing(reporting):
    payloads = scenario.all_events()
    first = scenario.envelopes(payloads)
    # Redelivery of the very same envelopes, plus re-published copies with new event ids, all shuffled:
    # findings before their visits, case closures before openings, attendance out of order.
    copies = scenario.envelopes(payloads)
    messages = [*first, *first, *copies]
    random.Random(6).shuffle(messages)
    messages.reverse()
    await scenario.publish(reporting.settings, messages)
    await reporting.converge([*first, *copies])
    await assert_expected(reporting)
