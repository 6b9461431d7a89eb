"""Deterministic synthetic city modelled on Baiyin (fake people only) in the bureau's export format.

`generate(scale, seed)` builds a `City`; `write_csv(city, folder)` / `csv_texts(city)` / `to_json(city)` write the
export that committees' import endpoint takes. Full scale (1.0): ~300 schools, ~18,000 staff, ~200,000 students.
"""

from __future__ import annotations

import bisect
import csv
import io
import itertools
import random
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import date, timedelta
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

CITY_ID = "620400"
CITY_NAME = "白银市"
# (code, name, share of schools)
DISTRICTS: list[tuple[str, str, float]] = [
    ("620402", "白银区", 0.22),
    ("620403", "平川区", 0.15),
    ("620421", "靖远县", 0.22),
    ("620422", "会宁县", 0.27),
    ("620423", "景泰县", 0.14),
]
# school type -> (share of schools, number of grades, relative size, name suffix)
SCHOOL_TYPES: dict[str, tuple[float, int, float, str]] = {
    "kindergarten": (0.20, 3, 0.35, "幼儿园"),
    "primary": (0.45, 6, 1.0, "小学"),
    "junior_secondary": (0.14, 3, 1.3, "初级中学"),
    "senior_secondary": (0.08, 3, 1.8, "高级中学"),
    "nine_year": (0.10, 9, 1.1, "九年制学校"),
    "special_education": (0.03, 9, 0.15, "特殊教育学校"),
}
ENTITIES = ("org_units", "staff", "families", "guardians", "students")
COLUMNS: dict[str, list[str]] = {
    "org_units": ["org_unit_id", "parent_id", "level", "name", "school_type"],
    "staff": ["staff_id", "name", "gender", "phone", "org_unit_id", "roles", "class_ids", "head_class_id"],
    "families": ["family_no", "parents_work_away", "living_arrangement", "address"],
    "guardians": ["guardian_no", "family_no", "name", "relation", "phone", "is_primary", "works_away"],
    "students": ["student_no", "name", "gender", "birth_date", "national_id", "class_id", "family_no"],
}
FULL_SCHOOLS, FULL_STUDENTS, FULL_STAFF = 300, 200_000, 18_000

SURNAMES = (
    "王李张刘陈杨赵黄周吴徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
    "姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
GIVEN = (
    "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂英华建国志红梅玉兵鹏辉飞鑫宇浩然子涵欣怡梓轩思雨一诺"
    "佳琪俊杰晨曦嘉豪雅婷博文"
)
TOWNS = (
    "城关 北京路 人民路 东山 西区 王岘 水泉 共和 红会 宝积 乌兰 东湾 北湾 郭城 会师 甘沟 丁家沟 芦阳 喜泉 草窝滩"
).split()
PHONE_PREFIXES = ("130", "131", "133", "135", "136", "137", "138", "139", "150", "151", "158", "177", "180", "187")
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"
# living arrangement when parents work away / when they do not: (values, cumulative weights)
AWAY = (("grandparents", "relatives", "one_parent", "alone"), tuple(itertools.accumulate((0.68, 0.18, 0.12, 0.02))))
HOME = (
    ("both_parents", "one_parent", "grandparents", "institution"),
    tuple(itertools.accumulate((0.8, 0.15, 0.045, 0.005))),
)


@dataclass
class OrgUnit:
    """A city, district/county, school, grade or class."""

    org_unit_id: str
    parent_id: str | None
    level: str
    name: str
    school_type: str | None = None


@dataclass
class Staff:
    """A teacher or school leader."""

    staff_id: str
    name: str
    gender: str
    phone: str
    org_unit_id: str
    roles: list[str]
    class_ids: list[str] = field(default_factory=list)
    head_class_id: str | None = None


@dataclass
class Family:
    """A household: whether the parents work away and who the child lives with."""

    family_no: str
    parents_work_away: bool
    living_arrangement: str
    address: str


@dataclass
class Guardian:
    """A parent or other guardian of a family."""

    guardian_no: str
    family_no: str
    name: str
    relation: str
    phone: str
    is_primary: bool
    works_away: bool


@dataclass
class Student:
    """A student in a class."""

    student_no: str
    name: str
    gender: str
    birth_date: date
    national_id: str
    class_id: str
    family_no: str


@dataclass
class City:
    """Everything the bureau exports."""

    org_units: list[OrgUnit] = field(default_factory=list)
    staff: list[Staff] = field(default_factory=list)
    families: list[Family] = field(default_factory=list)
    guardians: list[Guardian] = field(default_factory=list)
    students: list[Student] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Rows per entity."""
        return {e: len(getattr(self, e)) for e in ENTITIES}


def id_check_digit(first17: str) -> str:
    """The GB 11643 check character of an 18-character resident ID number."""
    return ID_CHECK[sum(int(c) * w for c, w in zip(first17, ID_WEIGHTS, strict=True)) % 11]


def _split(total: int, weights: list[float], minimum: int = 0) -> list[int]:
    """Split `total` by weights into integers that sum to `total` (each at least `minimum`)."""
    s = sum(weights)
    parts = [max(minimum, int(total * w / s)) for w in weights]
    i = 0
    while sum(parts) < total:
        parts[i % len(parts)] += 1
        i += 1
    return parts


class _Gen:
    """Holds the random source and counters while generating (fast helpers over `random()`)."""

    def __init__(self, seed: int) -> None:
        self.r = random.Random(seed)
        self.rand = self.r.random
        self.n_staff = self.n_family = self.n_guardian = self.n_student = 0
        self.resident_ids: set[str] = set()  # the first 17 characters of every student's resident ID so far

    def below(self, n: int) -> int:
        """An int in [0, n)."""
        return int(self.rand() * n)

    def pick(self, seq: Sequence[T]) -> T:
        return seq[int(self.rand() * len(seq))]

    def weighted(self, seq: Sequence[T], cum_weights: Sequence[float]) -> T:
        return seq[bisect.bisect(cum_weights, self.rand() * cum_weights[-1])]

    def name(self, surname: str | None = None) -> str:
        given = self.pick(GIVEN) + (self.pick(GIVEN) if self.rand() < 0.7 else "")
        return (surname or self.pick(SURNAMES)) + given

    def phone(self) -> str:
        return self.pick(PHONE_PREFIXES) + f"{self.below(100_000_000):08d}"


def generate(scale: float = 1.0, seed: int = 42) -> City:
    """A deterministic city; `scale` multiplies schools, staff and students (1.0 ≈ the real Baiyin)."""
    if scale <= 0:
        raise ValueError("scale must be positive")
    g = _Gen(seed)
    r = g.r
    city = City()
    city.org_units.append(OrgUnit(CITY_ID, None, "city", CITY_NAME))
    n_schools = max(len(DISTRICTS), round(FULL_SCHOOLS * scale))
    per_district = _split(n_schools, [d[2] for d in DISTRICTS], minimum=1)
    types = list(SCHOOL_TYPES)
    type_weights = [SCHOOL_TYPES[t][0] for t in types]
    schools: list[tuple[str, str, str]] = []  # (school id, district code, type)
    for (code, dname, _), count in zip(DISTRICTS, per_district, strict=True):
        city.org_units.append(OrgUnit(code, CITY_ID, "district", dname))
        for _ in range(count):
            # the first schools cover every type, so even a small city has each kind
            k = len(schools)
            stype = types[(k + 1) % len(types)] if k < len(types) else r.choices(types, type_weights)[0]
            schools.append((f"s{len(schools) + 1:04d}", code, stype))
    sizes = [SCHOOL_TYPES[t][2] * r.uniform(0.6, 1.4) for _, _, t in schools]
    students_per_school = _split(max(len(schools) * 20, round(FULL_STUDENTS * scale)), sizes, minimum=20)
    staff_total = max(len(schools) * 8, round(FULL_STAFF * scale))
    staff_per_school = _split(staff_total, [float(n) for n in students_per_school], minimum=8)
    districts = {d[0]: d[1] for d in DISTRICTS}
    for (sid, code, stype), n_students, n_staff in zip(schools, students_per_school, staff_per_school, strict=True):
        town = r.choice(TOWNS)
        school_name = f"{districts[code]}{town}{SCHOOL_TYPES[stype][3]}"
        city.org_units.append(OrgUnit(sid, code, "school", f"{school_name}({sid})", stype))
        _school(g, city, sid, code, stype, n_students, n_staff, town)
    return city


def _school(g: _Gen, city: City, sid: str, code: str, stype: str, n_students: int, n_staff: int, town: str) -> None:
    """Grades, classes, staff, students and families of one school."""
    r = g.r
    n_grades = SCHOOL_TYPES[stype][1]
    per_class = 12 if stype == "special_education" else 40
    classes_per_grade = max(1, round(n_students / n_grades / per_class))
    classes: list[str] = []
    for gi in range(1, n_grades + 1):
        gid = f"{sid}-g{gi}"
        city.org_units.append(OrgUnit(gid, sid, "grade", f"{gi}年级"))
        for ci in range(1, classes_per_grade + 1):
            cid = f"{gid}-c{ci}"
            city.org_units.append(OrgUnit(cid, gid, "class", f"{gi}年级{ci}班"))
            classes.append(cid)
    # Staff: a principal, vice principals, a mental-health teacher, ideological-political teachers,
    # one class teacher per class, subject teachers for the rest.
    roles: list[list[str]] = [["principal"]]
    roles += [["vice_principal"]] * (1 if n_staff < 40 else 2)
    roles += [["mental_health_teacher"]]
    roles += [["ideological_political_teacher"]] * max(1, n_grades // 3)
    leaders = len(roles)
    roles += [["class_teacher", "subject_teacher"]] * len(classes)
    while len(roles) < n_staff:
        roles.append(["subject_teacher"])
    for i, rl in enumerate(roles):
        g.n_staff += 1
        head = classes[i - leaders] if "class_teacher" in rl else None
        teaches: list[str] = []
        if head:
            teaches = [head]
        elif "subject_teacher" in rl or "ideological_political_teacher" in rl:
            teaches = sorted(r.sample(classes, min(len(classes), r.randint(2, 4))))
        gender = "F" if g.rand() < 0.62 else "M"
        city.staff.append(Staff(f"t{g.n_staff:06d}", g.name(), gender, g.phone(), sid, list(rl), teaches, head))
    # Students, each in a family; about 8% join an earlier student's family as a sibling.
    per_class_counts = _split(n_students, [1.0] * len(classes))
    school_families: list[tuple[str, str]] = []  # (family_no, surname)
    base_year = 2026
    for cid, count in zip(classes, per_class_counts, strict=True):
        grade = int(cid.split("-g")[1].split("-")[0])
        age = {"kindergarten": 3, "senior_secondary": 15, "junior_secondary": 12}.get(stype, 6) + grade
        for _ in range(count):
            if school_families and g.rand() < 0.08:
                family_no, surname = g.pick(school_families)
            else:
                family_no, surname = _family(g, city, code, town)
                school_families.append((family_no, surname))
            g.n_student += 1
            gender = "M" if g.rand() < 0.52 else "F"
            born = date(base_year - age, 1, 1) + timedelta(days=g.below(365))
            seq = g.below(100) * 10 + 2 * g.below(5) + (1 if gender == "M" else 0)
            first17 = f"{code}{born:%Y%m%d}{seq:03d}"
            while first17 in g.resident_ids:  # one person's number: the next free sequence of that gender
                seq = (seq + 10) % 1000
                first17 = f"{code}{born:%Y%m%d}{seq:03d}"
            g.resident_ids.add(first17)
            city.students.append(
                Student(
                    f"G{code}{g.n_student:07d}",
                    g.name(surname),
                    gender,
                    born,
                    first17 + id_check_digit(first17),
                    cid,
                    family_no,
                )
            )


def _family(g: _Gen, city: City, code: str, town: str) -> tuple[str, str]:
    """A new family with its guardians; about one in five has parents working away (left-behind)."""
    g.n_family += 1
    family_no = f"F{g.n_family:07d}"
    surname = g.pick(SURNAMES)
    away = g.rand() < 0.2
    arrangement = g.weighted(*(AWAY if away else HOME))
    address = f"{town}{1 + g.below(80)}号{1 + g.below(30)}栋{1 + g.below(6)}0{1 + g.below(4)}室"
    city.families.append(Family(family_no, away, arrangement, address))
    members: list[tuple[str, bool]] = []  # (relation, works away)
    if arrangement == "both_parents":
        members = [("mother", False), ("father", False)]
    elif arrangement == "one_parent":
        members = [(g.pick(("mother", "father")), False)]
        if away:
            members.append(("father" if members[0][0] == "mother" else "mother", True))
    elif arrangement == "grandparents":
        members = [("grandmother", False), ("grandfather", False)] if g.rand() < 0.6 else [("grandmother", False)]
        if away:
            members += [("father", True), ("mother", True)]
    elif arrangement == "relatives":
        members = [("relative", False), ("father", True)]
    elif arrangement == "alone":
        members = [("father", True)]
    else:
        members = [("other", False)]
    for i, (relation, works_away) in enumerate(members):
        g.n_guardian += 1
        same_surname = relation in ("father", "grandfather")
        city.guardians.append(
            Guardian(
                f"P{g.n_guardian:07d}",
                family_no,
                g.name(surname if same_surname else None),
                relation,
                g.phone(),
                i == 0,
                works_away,
            )
        )
    return family_no, surname


def _cell(v: Any) -> str:
    """One CSV cell: lists joined by ';', booleans as true/false, None as empty."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        return ";".join(v)
    if isinstance(v, date):
        return v.isoformat()
    return str(v)


def csv_texts(city: City) -> dict[str, str]:
    """The export as CSV text per entity (header row first, UTF-8)."""
    out: dict[str, str] = {}
    for entity in ENTITIES:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        cols = COLUMNS[entity]
        w.writerow(cols)
        w.writerows([_cell(getattr(row, c)) for c in cols] for row in getattr(city, entity))
        out[entity] = buf.getvalue()
    return out


def plant_bad_rows(texts: dict[str, str]) -> tuple[dict[str, str], set[tuple[str, int, str]]]:
    """Insert invalid rows spread through the CSV export (for import tests and the bench).

    Returns the new texts and the (entity, CSV line, field) each planted row must be rejected with.
    """
    lines = {e: t.rstrip("\n").split("\n") for e, t in texts.items()}
    student = lines["students"][1].split(",")
    guardian = lines["guardians"][1].split(",")
    cls, fam = student[5], student[6]
    bad: dict[str, list[tuple[tuple[str, ...], list[str]]]] = {
        "students": [
            (("birth_date",), ["Gbad1", "王一", "M", "2016-02-30", "", cls, fam]),
            (("class_id",), ["Gbad2", "王二", "F", "2016-02-01", "", "s9999-g1-c1", fam]),
            (("family_no",), ["Gbad3", "王三", "F", "2016-02-01", "", cls, "F9999999"]),
            (("national_id",), ["Gbad4", "王四", "F", "2016-02-01", "620402201602010010", cls, fam]),
            (("student_no",), student),  # a duplicate of line 2
            (("name", "gender"), ["Gbad5", "", "X", "2016-02-01", "", cls, fam]),
        ],
        "guardians": [
            (("phone",), ["Pbad1", guardian[1], "李五", "mother", "12345", "true", "false"]),
            (("relation",), ["Pbad2", guardian[1], "李六", "neighbour", "", "false", "false"]),
        ],
        "families": [(("living_arrangement",), ["Fbad1", "false", "on_the_moon", ""])],
    }
    out = dict(texts)
    expected: set[tuple[str, int, str]] = set()
    for entity, rows in bad.items():
        body = lines[entity]
        step = max(1, (len(body) - 1) // (len(rows) + 1))
        for i, (fields_, cells) in enumerate(rows, start=1):
            at = min(len(body), 2 + i * step + i - 1)  # spread through the file, after line 2
            body.insert(at, ",".join(cells))
            for f in fields_:
                expected.add((entity, at + 1, f))
        out[entity] = "\n".join(body) + "\n"
    return out, expected


def write_csv(city: City, folder: str | Path) -> dict[str, Path]:
    """Write `<entity>.csv` files into `folder`; returns their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for entity, text in csv_texts(city).items():
        path = folder / f"{entity}.csv"
        path.write_text(text, encoding="utf-8")
        paths[entity] = path
    return paths


def to_json(city: City) -> dict[str, list[dict[str, Any]]]:
    """The export as the JSON body of `POST /api/v1/imports` (dates as ISO strings)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for entity in ENTITIES:
        rows: list[Any] = getattr(city, entity)
        names = [f.name for f in fields(rows[0])] if rows else []
        dated = [n for n in names if n == "birth_date"]
        items = []
        for row in rows:
            d = {n: getattr(row, n) for n in names}
            for n in dated:
                d[n] = d[n].isoformat()
            items.append(d)
        out[entity] = items
    return out


if __name__ == "__main__":
    import argparse
    import time

    p = argparse.ArgumentParser(description="Generate the synthetic city and write its CSV export.")
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--out", default="city-export")
    a = p.parse_args()
    t0 = time.perf_counter()
    c = generate(a.scale, a.seed)
    t1 = time.perf_counter()
    write_csv(c, a.out)
    print(c.counts(), f"generated in {t1 - t0:.1f}s, written in {time.perf_counter() - t1:.1f}s to {a.out}")
