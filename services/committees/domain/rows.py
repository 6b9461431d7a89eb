"""Validation of import rows (pure): field formats, then references between rows and to the directory."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from services.committees.domain.vocabularies import Entity, Gender, Relation
from shared import scope
from shared.contracts.common import LivingArrangement, OrgLevel, SchoolType, StaffRole

ENTITIES: tuple[str, ...] = tuple(e.value for e in Entity)  # in dependency order
# ASCII digits only ([0-9], not \d): the same patterns are the API's JSON Schema, where \d is ASCII.
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
PHONE_RE = re.compile(r"^(1[0-9]{10}|0[0-9]{2,3}-?[0-9]{7,8})$")
# Region (6 digits), birth date YYYYMMDD (born 1900-2099), sequence (3), check character (a digit or X).
NATIONAL_ID_RE = re.compile(r"^[0-9]{6}(19|20)[0-9]{2}(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])[0-9]{3}[0-9X]$")
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"
RELATIONS: frozenset[str] = frozenset(r.value for r in Relation)
GENDERS: frozenset[str] = frozenset(g.value for g in Gender)
TRUE = frozenset({"true", "1", "yes", "y", "是", "t"})
FALSE = frozenset({"false", "0", "no", "n", "否", "f", ""})
EARLIEST_BIRTH = date(1990, 1, 1)
BIRTH_RANGE = "must lie between 1990-01-01 and today"
BIRTH_DATE_RE = re.compile(r"^(199[0-9]|2[0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$")  # from 1990 on
PARENT_LEVEL = {
    OrgLevel.DISTRICT: OrgLevel.CITY,
    OrgLevel.SCHOOL: OrgLevel.DISTRICT,
    OrgLevel.GRADE: OrgLevel.SCHOOL,
    OrgLevel.CLASS: OrgLevel.GRADE,
}


@dataclass(frozen=True)
class RowError:
    """Why one row was rejected: entity, row number (CSV line, or JSON array index), field, reason."""

    entity: str
    row: int
    field: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"entity": self.entity, "row": self.row, "field": self.field, "reason": self.reason}


class Bad(ValueError):
    """A field value that breaks a rule."""


def national_id_check(first17: str) -> str:
    """The check character of a resident ID number (GB 11643-1999, ISO 7064 MOD 11-2) from its first 17 digits."""
    return ID_CHECK[sum(map(operator.mul, map(int, first17), ID_WEIGHTS)) % 11]


def national_id_ok(value: str) -> bool:
    """Whether an 18-character resident ID number has a valid format, date and check character."""
    if not NATIONAL_ID_RE.match(value):
        return False
    try:
        date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return False
    return national_id_check(value[:17]) == value[17]


def birth_date_fault(born: date, today: date) -> str | None:
    """Why a child's birth date cannot be right (None: it can): from 1990-01-01 up to today."""
    return BIRTH_RANGE if not EARLIEST_BIRTH <= born <= today else None


def school_type_fault(level: str, school_type: str | None) -> str | None:
    """Why an org unit's school type does not fit its level (None: it fits): a school has one, nothing else does."""
    if level == OrgLevel.SCHOOL and school_type is None:
        return "is required for a school"
    if level != OrgLevel.SCHOOL and school_type is not None:
        return "is only allowed for a school"
    return None


def head_class_fault(head_class_id: str | None, roles: list[str]) -> str | None:
    """Why a staff member cannot head the class (None: they can, or head none): only a class teacher heads one."""
    return "only a class_teacher can head a class" if head_class_id and StaffRole.CLASS_TEACHER not in roles else None


def _text(v: Any, *, required: bool = True, max_len: int = 100) -> str | None:
    s = "" if v is None else str(v).strip()
    if not s:
        if required:
            raise Bad("is required")
        return None
    if len(s) > max_len:
        raise Bad(f"is longer than {max_len} characters")
    return s


def _ident(v: Any, *, required: bool = True) -> str | None:
    s = _text(v, required=required, max_len=64)
    if s is not None and not ID_RE.match(s):
        raise Bad("must be 1-64 letters, digits, '-' or '_'")
    return s


def _bool(v: Any, default: bool | None = None) -> bool:
    if isinstance(v, bool):
        return v
    s = "" if v is None else str(v).strip().lower()
    if s == "" and default is not None:
        return default
    if s in TRUE:
        return True
    if s in FALSE and s != "":
        return False
    raise Bad("must be true or false")


def _enum(v: Any, allowed: frozenset[str], *, required: bool = True) -> str | None:
    s = _text(v, required=required, max_len=40)
    if s is None:
        return None
    if s not in allowed:
        raise Bad(f"must be one of: {', '.join(sorted(allowed))}")
    return s


LEVELS = frozenset(x.value for x in OrgLevel)
SCHOOL_TYPES = frozenset(x.value for x in SchoolType)
ARRANGEMENTS = frozenset(x.value for x in LivingArrangement)
STAFF_ROLES = frozenset(x.value for x in StaffRole)


def _list(v: Any) -> list[str]:
    if v is None:
        return []
    if isinstance(v, list):
        return [str(x).strip() for x in v if str(x).strip()]
    return [x.strip() for x in str(v).split(";") if x.strip()]


def _phone(v: Any) -> str | None:
    s = _text(v, required=False, max_len=20)
    if s is not None and not PHONE_RE.match(s):
        raise Bad("must be an 11-digit mobile number or a landline like 0943-1234567")
    return s


def _date(v: Any) -> date:
    if isinstance(v, date):
        return v
    s = _text(v, max_len=10)
    try:
        d = date.fromisoformat(str(s))
    except ValueError:
        raise Bad("must be a date YYYY-MM-DD") from None
    if d < EARLIEST_BIRTH:
        raise Bad(BIRTH_RANGE)
    return d


def _national_id(v: Any) -> str | None:
    s = _text(v, required=False, max_len=18)
    if s is not None:
        s = s.upper()
        if not national_id_ok(s):
            raise Bad("is not a valid 18-character resident ID number")
    return s


def _roles(v: Any) -> list[str]:
    roles = _list(v)
    if not roles:
        raise Bad("at least one role is required")
    for r in roles:
        if r not in STAFF_ROLES:
            raise Bad(f"unknown role {r!r}; allowed: {', '.join(sorted(STAFF_ROLES))}")
    return sorted(set(roles))


def _class_ids(v: Any) -> list[str]:
    ids = _list(v)
    for i in ids:
        if not ID_RE.match(i):
            raise Bad(f"class id {i!r} is malformed")
    return sorted(set(ids))


# Each field's parser: a fast path for the text of a valid value (what a CSV cell holds), answering exactly what the
# rule function beside it answers for that text; anything else (another type, a value it does not accept at once)
# goes to the rule function itself, which answers or raises the same `Bad`. A bulk import checks ~770 k rows.
def _text_f(*, required: bool = True, max_len: int = 100) -> Callable[[Any], Any]:
    def parse(v: Any) -> Any:
        if v.__class__ is str:
            s = v.strip()
            if s and len(s) <= max_len:
                return s
        return _text(v, required=required, max_len=max_len)

    return parse


def _ident_f(*, required: bool = True) -> Callable[[Any], Any]:
    match = ID_RE.match  # 1-64 characters: within `_ident`'s length, and never empty

    def parse(v: Any) -> Any:
        if v.__class__ is str:
            s = v.strip()  # stripped: no final newline for `$` to match before
            if match(s):
                return s
        return _ident(v, required=required)

    return parse


def _enum_f(allowed: frozenset[str], *, required: bool = True) -> Callable[[Any], Any]:
    assert all(0 < len(a) <= 40 for a in allowed)  # an allowed value passes `_enum`'s length check

    def parse(v: Any) -> Any:
        if v.__class__ is str:
            s = v.strip()
            if s in allowed:
                return s
        return _enum(v, allowed, required=required)

    return parse


def _bool_f(default: bool | None = None) -> Callable[[Any], Any]:
    def parse(v: Any) -> Any:
        if v.__class__ is str:
            s = v.strip().lower()
            if s in TRUE:
                return True
            if s and s in FALSE:
                return False
        return _bool(v, default)

    return parse


def _phone_f() -> Callable[[Any], Any]:
    match = PHONE_RE.match  # at most 13 characters: within `_phone`'s length

    def parse(v: Any) -> Any:
        if v.__class__ is str:
            s = v.strip()
            if match(s):
                return s
        return _phone(v)

    return parse


def _date_f() -> Callable[[Any], Any]:
    known: dict[str, date] = {}  # the text of dates already accepted (a city's children share a few thousand)

    def parse(v: Any) -> Any:
        if v.__class__ is str and (d := known.get(v)) is not None:
            return d
        d = _date(v)
        if v.__class__ is str and len(known) < 100_000:
            known[v] = d
        return d

    return parse


Field = tuple[str, Callable[[Any], Any]]
FIELDS: dict[str, list[Field]] = {
    "org_units": [
        ("org_unit_id", _ident_f()),
        ("parent_id", _ident_f(required=False)),
        ("level", _enum_f(LEVELS)),
        ("name", _text_f()),
        ("school_type", _enum_f(SCHOOL_TYPES, required=False)),
    ],
    "staff": [
        ("staff_id", _ident_f()),
        ("name", _text_f(max_len=50)),
        ("gender", _enum_f(GENDERS, required=False)),
        ("phone", _phone_f()),
        ("org_unit_id", _ident_f()),
        ("roles", _roles),
        ("class_ids", _class_ids),
        ("head_class_id", _ident_f(required=False)),
    ],
    "families": [
        ("family_no", _ident_f()),
        ("parents_work_away", _bool_f()),
        ("living_arrangement", _enum_f(ARRANGEMENTS)),
        ("address", _text_f(required=False, max_len=200)),
    ],
    "guardians": [
        ("guardian_no", _ident_f()),
        ("family_no", _ident_f()),
        ("name", _text_f(max_len=50)),
        ("relation", _enum_f(RELATIONS)),
        ("phone", _phone_f()),
        ("is_primary", _bool_f(False)),
        ("works_away", _bool_f(False)),
    ],
    "students": [
        ("student_no", _ident_f()),
        ("name", _text_f(max_len=50)),
        ("gender", _enum_f(GENDERS, required=False)),
        ("birth_date", _date_f()),
        ("national_id", _national_id),
        ("class_id", _ident_f()),
        ("family_no", _ident_f()),
    ],
}
NAMES = {entity: tuple(name for name, _ in fields) for entity, fields in FIELDS.items()}
KEYS = {"org_units": "org_unit_id", "staff": "staff_id", "families": "family_no", "guardians": "guardian_no"}
KEYS["students"] = "student_no"
# Columns a file must have (the others may be left out and are then empty).
REQUIRED_COLUMNS = {
    "org_units": ("org_unit_id", "parent_id", "level", "name"),
    "staff": ("staff_id", "name", "org_unit_id", "roles"),
    "families": ("family_no", "parents_work_away", "living_arrangement"),
    "guardians": ("guardian_no", "family_no", "name", "relation"),
    "students": ("student_no", "name", "birth_date", "class_id", "family_no"),
}


def clean_row(entity: str, raw: dict[str, Any], row: int, today: date) -> tuple[dict[str, Any] | None, list[RowError]]:
    """Parse one row's fields (birth dates up to `today`); the clean row, or None with every field error."""
    errors: list[RowError] = []
    get = raw.get
    try:  # every field at once; a bad one: each field again, to report every bad one
        out = dict(zip(NAMES[entity], [parse(get(name)) for name, parse in FIELDS[entity]], strict=True))
    except Bad:
        out = {}
        for name, parse in FIELDS[entity]:
            try:
                out[name] = parse(get(name))
            except Bad as exc:
                errors.append(RowError(entity, row, name, str(exc)))
    if entity == "students" and "birth_date" in out and (fault := birth_date_fault(out["birth_date"], today)):
        errors.append(RowError(entity, row, "birth_date", fault))
    if entity == "org_units" and not errors:
        if fault := school_type_fault(out["level"], out["school_type"]):
            errors.append(RowError(entity, row, "school_type", fault))
        if (out["level"] == OrgLevel.CITY) != (out["parent_id"] is None):
            errors.append(RowError(entity, row, "parent_id", "is required except for the city (and then empty)"))
    if entity == "staff" and not errors and (fault := head_class_fault(out["head_class_id"], out["roles"])):
        errors.append(RowError(entity, row, "head_class_id", fault))
    return (None, errors) if errors else (out, [])


@dataclass(frozen=True)
class Unit:
    """What reference checks need to know about an org unit."""

    level: str
    org_path: str
    parent_id: str | None


NATIONAL_ID_TAKEN = "this national ID belongs to another student record (the same child registered twice?)"


class Checker:
    """Validates whole import files: formats, duplicate keys, and references (to the file or the directory)."""

    def __init__(
        self, units: dict[str, Unit], family_nos: set[str], today: date, national_ids: dict[str, str] | None = None
    ) -> None:
        self.today = today
        self.national_ids = dict(national_ids or {})  # national ID -> the student_no holding it
        self.units = dict(units)
        self.existing_parents = {k: u.parent_id for k, u in units.items()}
        self.family_nos = set(family_nos)
        self.errors: list[RowError] = []
        self.seen: dict[str, dict[str, int]] = {}  # the row of each key so far, by entity

    def _format(self, entity: str, rows: list[tuple[int, dict[str, Any]]]) -> list[tuple[int, dict[str, Any]]]:
        """Field formats and duplicate keys; returns the rows that pass."""
        key = KEYS[entity]
        seen = self.seen.setdefault(entity, {})  # across the chunks of one file (`files.validate_chunks`)
        good = []
        for n, raw in rows:
            clean, errs = clean_row(entity, raw, n, self.today)
            if clean is None:
                self.errors.extend(errs)
                continue
            k = clean[key]
            if k in seen:
                self.errors.append(RowError(entity, n, key, f"duplicate of row {seen[k]}"))
                continue
            seen[k] = n
            good.append((n, clean))
        return good

    def org_units(self, rows: list[tuple[int, dict[str, Any]]]) -> list[dict[str, Any]]:
        """Valid org units with their computed org_path, parents first."""
        pending = {c["org_unit_id"]: (n, c) for n, c in self._format("org_units", rows)}
        out: list[dict[str, Any]] = []
        progress = True
        while pending and progress:  # resolve parents that appear later in the file
            progress = False
            for uid, (n, c) in list(pending.items()):
                parent = self.units.get(c["parent_id"]) if c["parent_id"] else None
                if c["parent_id"] and parent is None and c["parent_id"] in pending:
                    continue
                del pending[uid]
                progress = True
                err = self._unit_error(c, parent)
                if err:
                    self.errors.append(RowError("org_units", n, err[0], err[1]))
                    continue
                c["org_path"] = (parent.org_path if parent else "") + "/" + uid
                self.units[uid] = Unit(c["level"], c["org_path"], c["parent_id"])
                out.append(c)
        for n, _ in pending.values():
            self.errors.append(RowError("org_units", n, "parent_id", "parent chain is circular or rejected"))
        return out

    def _unit_error(self, c: dict[str, Any], parent: Unit | None) -> tuple[str, str] | None:
        uid = c["org_unit_id"]
        if c["parent_id"] and parent is None:
            return ("parent_id", f"unknown org unit {c['parent_id']!r}")
        if parent is not None and PARENT_LEVEL.get(OrgLevel(c["level"])) != parent.level:
            return ("level", f"a {c['level']} cannot sit under a {parent.level}")
        if uid in self.existing_parents and self.existing_parents[uid] != c["parent_id"]:
            return ("parent_id", "an org unit cannot move to another parent")
        if uid in self.units and self.units[uid].level != c["level"]:
            return ("level", "an org unit cannot change level")
        return None

    def staff(self, rows: list[tuple[int, dict[str, Any]]]) -> list[dict[str, Any]]:
        """Valid staff: their unit exists, their classes are classes of that unit."""
        out = []
        for n, c in self._format("staff", rows):
            unit = self.units.get(c["org_unit_id"])
            err: tuple[str, str] | None = None
            if unit is None or unit.level in (OrgLevel.GRADE, OrgLevel.CLASS):
                err = ("org_unit_id", "must be an existing school, district or city")
            else:
                for cid in [*c["class_ids"], *([c["head_class_id"]] if c["head_class_id"] else [])]:
                    cu = self.units.get(cid)
                    if cu is None or cu.level != OrgLevel.CLASS or not scope.within(cu.org_path, unit.org_path):
                        field = "head_class_id" if cid == c["head_class_id"] else "class_ids"
                        err = (field, f"{cid!r} is not a class of {c['org_unit_id']}")
                        break
            if err:
                self.errors.append(RowError("staff", n, *err))
                continue
            assert unit is not None
            c["org_path"] = unit.org_path
            if c["head_class_id"] and c["head_class_id"] not in c["class_ids"]:
                c["class_ids"] = sorted([*c["class_ids"], c["head_class_id"]])
            out.append(c)
        return out

    def families(self, rows: list[tuple[int, dict[str, Any]]]) -> list[dict[str, Any]]:
        """Valid families (known to later rows of this import)."""
        out = [c for _, c in self._format("families", rows)]
        self.family_nos.update(c["family_no"] for c in out)
        return out

    def guardians(self, rows: list[tuple[int, dict[str, Any]]]) -> list[dict[str, Any]]:
        """Valid guardians of known families."""
        out = []
        for n, c in self._format("guardians", rows):
            if c["family_no"] not in self.family_nos:
                self.errors.append(RowError("guardians", n, "family_no", f"unknown family {c['family_no']!r}"))
                continue
            out.append(c)
        return out

    def students(self, rows: list[tuple[int, dict[str, Any]]]) -> list[dict[str, Any]]:
        """Valid students in existing classes and known families."""
        out = []
        for n, c in self._format("students", rows):
            unit = self.units.get(c["class_id"])
            if unit is None or unit.level != OrgLevel.CLASS:
                self.errors.append(RowError("students", n, "class_id", f"unknown class {c['class_id']!r}"))
                continue
            if c["family_no"] not in self.family_nos:
                self.errors.append(RowError("students", n, "family_no", f"unknown family {c['family_no']!r}"))
                continue
            nid = c.get("national_id")
            if nid and self.national_ids.setdefault(nid, c["student_no"]) != c["student_no"]:
                self.errors.append(RowError("students", n, "national_id", NATIONAL_ID_TAKEN))
                continue
            c["org_path"] = unit.org_path
            out.append(c)
        return out
