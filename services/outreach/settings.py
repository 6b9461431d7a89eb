"""Outreach settings: the kit's base plus the care rules (defaults here, overridable by a YAML file)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import yaml
from pydantic import BaseModel, Field, model_validator
from pydantic_settings import SettingsConfigDict

from shared.auth import Role
from shared.contracts.common import Category, Department, Severity, StaffRole
from shared.settings import ServiceSettings


class ExtraCarer(BaseModel):
    """An additional carer role for findings of a category at or above a severity."""

    category: Category
    min_severity: Severity
    role: StaffRole


class Rules(BaseModel):
    """Which findings open cases, who cares for them, deadlines and referrals (DESIGN.md §2: configuration)."""

    # Categories that are special groups: a finding in one opens a case and enters the group register.
    special_group_categories: list[Category] = [
        Category.LEFT_BEHIND,
        Category.ORPHANED_OR_UNACCOMPANIED,
        Category.DISABILITY,
        Category.FAMILY_HARDSHIP,
    ]
    # Any finding at or above this severity opens a case whatever its category.
    open_case_min_severity: Severity = Severity.HIGH
    # A finding that would not open a case still joins the child's open case (more facts for the carer).
    join_non_qualifying: bool = True
    # A qualifying finding reopens a case closed at most this many days ago; after that it opens a new case.
    reopen_within_days: float = 365
    # Risk level = the highest severity, raised one level when this many distinct categories are present (0 = off).
    risk_raise_category_count: int = 3
    # Hours until the first contact is due, by severity.
    first_contact_hours: dict[Severity, float] = {
        Severity.URGENT: 24,
        Severity.HIGH: 72,
        Severity.MEDIUM: 7 * 24,
        Severity.LOW: 30 * 24,
    }
    # Days from a contact to the case's next review at the latest, by risk level (a carer may set an earlier date).
    review_days: dict[Severity, float] = {
        Severity.URGENT: 7,
        Severity.HIGH: 14,
        Severity.MEDIUM: 30,
        Severity.LOW: 60,
    }
    # Hours an escalated, still uncontacted case has before it escalates one more level (0 = the severity's hours).
    escalation_repeat_hours: float = 0
    # Carer roles by category; categories not listed get `default_carer_roles`.
    category_carer_roles: dict[Category, list[StaffRole]] = {Category.MENTAL_HEALTH: [StaffRole.MENTAL_HEALTH_TEACHER]}
    default_carer_roles: list[StaffRole] = [StaffRole.CLASS_TEACHER]
    extra_carers: list[ExtraCarer] = [
        ExtraCarer(category=Category.SAFETY_RISK, min_severity=Severity.URGENT, role=StaffRole.VICE_PRINCIPAL)
    ]
    # When a carer role is missing at a level, these roles stand in (tried in order) before going one level up.
    fallback_carer_roles: list[StaffRole] = [StaffRole.VICE_PRINCIPAL, StaffRole.PRINCIPAL]
    # Departments a case category is referred to.
    referral_departments: dict[Category, list[Department]] = {
        Category.FAMILY_HARDSHIP: [Department.CIVIL_AFFAIRS],
        Category.ORPHANED_OR_UNACCOMPANIED: [Department.CIVIL_AFFAIRS],
        Category.GUARDIANSHIP_GAP: [Department.CIVIL_AFFAIRS],
        Category.DISABILITY: [Department.DISABLED_PERSONS_FEDERATION],
        Category.FAMILY_CONFLICT: [Department.WOMENS_FEDERATION],
        Category.HEALTH_NEED: [Department.HEALTH],
        Category.SAFETY_RISK: [Department.PUBLIC_SECURITY, Department.CIVIL_AFFAIRS],
    }
    # Findings below this severity do not trigger an automatic referral.
    referral_min_severity: Severity = Severity.LOW
    # Days a department has to acknowledge a referral before it escalates (again per level).
    referral_ack_days: float = 3
    # Days a department has to resolve a referral it accepted before it is chased up the org tree (again per level).
    referral_resolve_days: float = 30
    # Roles that may approve (or reject) a proposed closure; the proposer never decides on their own proposal.
    case_closers: list[Role] = [Role.SCHOOL_ADMIN, Role.DISTRICT_ADMIN, Role.BUREAU_ADMIN]
    # Carers are told a case's next deadline (first contact or escalation) is near this many hours ahead (0 = off).
    notify_due_soon_hours: float = 12


class OutreachSettings(ServiceSettings):
    """Settings of the outreach service (env prefix `OUTREACH_`)."""

    service_name: ClassVar[str] = "outreach"
    model_config = SettingsConfigDict(env_prefix="OUTREACH_", extra="ignore")

    http_port: int = 8103
    rules_file: str = Field(default="", description="YAML file overriding the default rules")
    rules: Rules = Field(default_factory=Rules)
    scheduler_interval_seconds: float = 30.0
    scheduler_batch_size: int = 500
    scheduler_enabled: bool = True
    # Notifications (usecases/notifications.py): the due-soon sweep and the email sender run every interval.
    notify_interval_seconds: float = 5.0
    smtp_host: str = Field(default="", description="SMTP server of the email channel; empty = no mail is sent")
    smtp_port: int = 25
    smtp_sender: str = "HSS notifications <notifications@hss.localhost>"
    smtp_timeout_seconds: float = 10.0
    email_link_base: str = Field(default="http://localhost:8100", description="origin the mails' links start with")
    email_batch_size: int = 100
    email_retry_seconds: float = 30.0  # first retry of a failed mail; doubles per attempt up to the maximum
    email_retry_max_seconds: float = 3600.0
    email_max_attempts: int = 12

    @model_validator(mode="before")
    @classmethod
    def _load_rules_file(cls, data: Any) -> Any:
        """Merge the rules YAML (if any) under explicitly given rules."""
        if isinstance(data, dict):
            path = data.get("rules_file")
            if path:
                loaded = yaml.safe_load(Path(path).read_text()) or {}
                given = data.get("rules") or {}
                if isinstance(given, BaseModel):
                    given = given.model_dump(exclude_unset=True)
                data["rules"] = {**loaded, **given}
        return data
