"""Referrals to departments and the special-group register: which department a finding goes to, deadlines, the
referral state machine, and which register groups a category (or a referral) is about."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from services.outreach.domain.cases import Escalation, at_least
from services.outreach.domain.orgs import MAX_ESCALATION_LEVEL, escalation_target
from services.outreach.settings import Rules
from shared.contracts.common import Category, Department, Severity, Vocabulary
from shared.contracts.outreach import ReferralStatus, SpecialGroup


class ReferralState(Vocabulary):
    """Life cycle of a referral to a department."""

    REQUESTED = ReferralStatus.REQUESTED
    ACKNOWLEDGED = ReferralStatus.ACKNOWLEDGED
    ACCEPTED = ReferralStatus.ACCEPTED
    DECLINED = ReferralStatus.DECLINED
    RESOLVED = ReferralStatus.RESOLVED


REFERRAL_TRANSITIONS: dict[ReferralState, set[ReferralState]] = {
    ReferralState.REQUESTED: {ReferralState.ACKNOWLEDGED},
    ReferralState.ACKNOWLEDGED: {ReferralState.ACCEPTED, ReferralState.DECLINED},
    ReferralState.ACCEPTED: {ReferralState.RESOLVED},
    ReferralState.DECLINED: set(),
    ReferralState.RESOLVED: set(),
}


def referral_refusal(current: ReferralState, target: ReferralState) -> str | None:
    """Why a department may not move its referral to `target` now (None: it may)."""
    if target not in REFERRAL_TRANSITIONS[current]:
        return f"a referral cannot go from {current} to {target}"
    return None


def referral_departments(rules: Rules, category: Category, severity: Severity) -> list[Department]:
    """The departments a finding of this category is referred to."""
    if not at_least(severity, rules.referral_min_severity):
        return []
    return list(rules.referral_departments.get(category, []))


def acknowledge_by(rules: Rules, now: datetime) -> datetime:
    """When a department must acknowledge a referral asked (or escalated) now."""
    return now + timedelta(days=rules.referral_ack_days)


def resolve_by(rules: Rules, now: datetime) -> datetime:
    """When a department must have resolved a referral it accepted (or was chased about) now."""
    return now + timedelta(days=rules.referral_resolve_days)


def chase_referral(rules: Rules, class_path: str, level: int, now: datetime) -> Escalation:
    """An accepted referral still unresolved at its deadline is chased one level up, with a fresh deadline."""
    up = min(level + 1, MAX_ESCALATION_LEVEL)
    return Escalation(up, escalation_target(class_path, up), resolve_by(rules, now), "unresolved")


def escalate_referral(rules: Rules, class_path: str, level: int, now: datetime) -> Escalation:
    """An unacknowledged referral goes one level up, with a fresh acknowledgement deadline."""
    up = min(level + 1, MAX_ESCALATION_LEVEL)
    return Escalation(up, escalation_target(class_path, up), acknowledge_by(rules, now), "unacknowledged")


def special_group(rules: Rules, category: Category) -> SpecialGroup | None:
    """The register group a finding category enters the child in, if any."""
    if category not in rules.special_group_categories:
        return None
    try:
        return SpecialGroup(category.value)
    except ValueError:
        return None  # a configured category without a register group of its own


def referred_groups(rules: Rules, referral_categories: Iterable[str]) -> set[SpecialGroup]:
    """The register groups some referrals are about: all a department may register, verify or see of a child."""
    return {g for c in referral_categories if (g := special_group(rules, Category(c))) is not None}
