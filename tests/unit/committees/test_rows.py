"""Import row validation: formats, duplicates, references and row numbers."""

from __future__ import annotations

from datetime import date

from demo import citygen
from services.committees.domain import files
from services.committees.domain.files import header_fault, parse_csv, parse_json, validate_one
from services.committees.domain.rows import (
    ENTITIES,
    Checker,
    Unit,
    clean_row,
    head_class_fault,
    national_id_ok,
    school_type_fault,
)
from services.committees.store import upserts

UNITS = {
    "620400": Unit("city", "/620400", None),
    "620402": Unit("district", "/620400/620402", "620400"),
    "s1": Unit("school", "/620400/620402/s1", "620402"),
    "s1-g1": Unit("grade", "/620400/620402/s1/s1-g1", "s1"),
    "s1-g1-c1": Unit("class", "/620400/620402/s1/s1-g1/s1-g1-c1", "s1-g1"),
}
TODAY = date(2026, 9, 1)


def student(**kw):
    row = {
        "student_no": "G1",
        "name": "王小明",
        "gender": "M",
        "birth_date": "2016-03-01",
        "national_id": "",
        "class_id": "s1-g1-c1",
        "family_no": "F1",
    }
    return {**row, **kw}


def test_national_id_check_character():
    first17 = "62040220160301001"
    good = first17 + citygen.id_check_digit(first17)
    assert national_id_ok(good)
    assert not national_id_ok(first17 + ("0" if good[-1] != "0" else "1"))
    assert not national_id_ok("62040220161301001" + "X")  # month 13


def test_clean_row_reports_every_bad_field():
    clean, errors = clean_row("students", student(name="", birth_date="2016-13-01", gender="x"), 7, TODAY)
    assert clean is None
    assert {(e.row, e.field) for e in errors} == {(7, "name"), (7, "birth_date"), (7, "gender")}


def test_birth_dates_between_1990_and_today():
    for born, ok in (("1989-12-31", False), ("1990-01-01", True), ("2026-09-01", True), ("2026-09-02", False)):
        clean, errors = clean_row("students", student(birth_date=born), 3, TODAY)
        assert (clean is not None) is ok, born
        assert ok or [(e.field, e.reason) for e in errors] == [("birth_date", "must lie between 1990-01-01 and today")]


def test_booleans_lists_and_enums():
    clean, _ = clean_row(
        "families", {"family_no": "F1", "parents_work_away": "是", "living_arrangement": "grandparents"}, 2, TODAY
    )
    assert clean is not None and clean["parents_work_away"] is True
    _, errors = clean_row(
        "families", {"family_no": "F1", "parents_work_away": "maybe", "living_arrangement": "x"}, 2, TODAY
    )
    assert {e.field for e in errors} == {"parents_work_away", "living_arrangement"}
    clean, _ = clean_row(
        "staff",
        {
            "staff_id": "t1",
            "name": "李老师",
            "org_unit_id": "s1",
            "roles": "subject_teacher;class_teacher",
            "class_ids": "s1-g1-c1",
            "head_class_id": "s1-g1-c1",
        },
        2,
        TODAY,
    )
    assert clean is not None and clean["roles"] == ["class_teacher", "subject_teacher"]


def test_references_duplicates_and_row_numbers():
    checker = Checker(UNITS, {"F1"}, TODAY)
    rows = [
        (2, student()),
        (3, student(student_no="G2", class_id="s1-g1")),  # a grade, not a class
        (4, student(student_no="G3", family_no="F9")),  # unknown family
        (5, student()),  # duplicate key
        (6, student(student_no="G4")),
    ]
    good = checker.students(rows)
    assert [g["student_no"] for g in good] == ["G1", "G4"]
    assert good[0]["org_path"] == "/620400/620402/s1/s1-g1/s1-g1-c1"
    assert sorted((e.row, e.field) for e in checker.errors) == [(3, "class_id"), (4, "family_no"), (5, "student_no")]


def test_a_national_id_belongs_to_one_student_record():
    nid, other = "620402201503010018", "11010519491231002X"
    assert national_id_ok(nid) and national_id_ok(other)
    checker = Checker(UNITS, {"F1"}, TODAY, {nid: "G-old"})
    rows = [
        (2, student(student_no="G1", national_id=nid)),  # held by another record in the directory
        (3, student(student_no="G-old", national_id=nid)),  # its own holder: a re-import changes nothing
        (4, student(student_no="G2", national_id=other)),
        (5, student(student_no="G3", national_id=other)),  # the same ID twice in one file
        (6, student(student_no="G4")),  # no ID: nothing to compare
    ]
    assert [g["student_no"] for g in checker.students(rows)] == ["G-old", "G2", "G4"]
    assert [(e.row, e.field) for e in checker.errors] == [(2, "national_id"), (5, "national_id")]


def test_a_school_has_a_school_type_and_no_other_unit_has_one():
    assert school_type_fault("school", "primary") is None
    assert school_type_fault("grade", None) is None
    assert school_type_fault("school", None) == "is required for a school"
    assert school_type_fault("class", "primary") == "is only allowed for a school"
    unit = {"org_unit_id": "s2", "parent_id": "620402", "level": "school", "name": "二小", "school_type": ""}
    assert [(e.row, e.field) for e in clean_row("org_units", unit, 4, TODAY)[1]] == [(4, "school_type")]


def test_only_a_class_teacher_heads_a_class():
    assert head_class_fault(None, ["subject_teacher"]) is None
    assert head_class_fault("s1-g1-c1", ["subject_teacher", "class_teacher"]) is None
    assert head_class_fault("s1-g1-c1", ["subject_teacher"]) == "only a class_teacher can head a class"
    staff = {"staff_id": "t1", "name": "李老师", "org_unit_id": "s1", "roles": "subject_teacher"}
    _, errors = clean_row("staff", {**staff, "head_class_id": "s1-g1-c1"}, 5, TODAY)
    assert [(e.row, e.field) for e in errors] == [(5, "head_class_id")]


def test_org_units_resolve_parents_later_in_the_file_and_reject_bad_levels():
    checker = Checker(UNITS, set(), TODAY)
    rows = [
        (2, {"org_unit_id": "s2-g1", "parent_id": "s2", "level": "grade", "name": "一年级"}),
        (3, {"org_unit_id": "s2", "parent_id": "620402", "level": "school", "name": "二小", "school_type": "primary"}),
        (4, {"org_unit_id": "s3", "parent_id": "620400", "level": "school", "name": "x", "school_type": "primary"}),
        (5, {"org_unit_id": "s1", "parent_id": "620400", "level": "district", "name": "moved"}),
    ]
    good = checker.org_units(rows)
    assert [(g["org_unit_id"], g["org_path"]) for g in good] == [
        ("s2", "/620400/620402/s2"),
        ("s2-g1", "/620400/620402/s2/s2-g1"),
    ]
    assert [(e.row, e.field) for e in checker.errors] == [(4, "level"), (5, "parent_id")]


def test_staff_classes_must_belong_to_their_school():
    checker = Checker({**UNITS, "s9-g1-c1": Unit("class", "/620400/620402/s9/s9-g1/s9-g1-c1", "s9-g1")}, set(), TODAY)
    base = {"staff_id": "t1", "name": "李老师", "org_unit_id": "s1", "roles": "subject_teacher"}
    good = checker.staff(
        [(2, {**base, "class_ids": "s1-g1-c1"}), (3, {**base, "staff_id": "t2", "class_ids": "s9-g1-c1"})]
    )
    assert [g["staff_id"] for g in good] == ["t1"]
    assert [(e.row, e.field) for e in checker.errors] == [(3, "class_ids")]


def test_csv_row_numbers_are_file_lines_and_the_generated_city_is_valid():
    rows, errors, _ = parse_csv("families", "family_no,parents_work_away,living_arrangement,address\nF1,true,alone,x\n")
    assert rows[0][0] == 2 and not errors
    city = citygen.generate(scale=0.002, seed=3)
    checker = Checker({}, set(), TODAY)
    texts = citygen.csv_texts(city)
    # in dependency order, as the import job validates them
    done = {entity: validate_one(entity, texts[entity], "csv", checker) for entity in ENTITIES if entity in texts}
    assert checker.errors == []
    assert {entity: received for entity, (_, received) in done.items()} == city.counts()
    assert {entity: len(clean) for entity, (clean, _) in done.items()} == city.counts()


def test_json_rows_are_numbered_by_array_index():
    rows, errors, total = parse_json("families", '[{"family_no": "F1"}, 3, {"family_no": "F2"}]')
    assert [n for n, _ in rows] == [0, 2] and total == 3
    assert [(e.row, e.field, e.reason) for e in errors] == [(1, "*", "must be an object")]


def test_a_csv_without_a_required_column_is_one_error():
    rows, errors, total = parse_csv("students", "student_no,name\nG1,x\nG2,y\n")
    assert rows == [] and total == 2
    assert [(e.row, e.field) for e in errors] == [(1, "birth_date"), (1, "class_id"), (1, "family_no")]


def test_an_upload_whose_header_lacks_the_entitys_columns_is_the_wrong_file():
    assert header_fault("students", "student_no,name\nG1,x\n") == (
        "the header (line 1) lacks the students columns birth_date, class_id, family_no"
    )
    assert header_fault("org_units", "null") == "the header (line 1) lacks the org_units columns " + ", ".join(
        ("org_unit_id", "parent_id", "level", "name")
    )
    assert header_fault("org_units", "") is not None
    assert header_fault("org_units", "\ufefforg_unit_id, parent_id,level,name,school_type\n") is None


def test_a_first_imports_inserts_are_the_upserts_without_their_conflict_clause():
    """The plain INSERT a first import runs is its upsert's statement minus the ON CONFLICT clause, nothing else:
    the same rows, the same answer (created counts, events) when no staged key exists yet."""
    for entity, sql in upserts.UPSERTS.items():
        plain = upserts.INSERTS[entity]
        assert "ON CONFLICT" in sql and "ON CONFLICT" not in plain
        start = sql.index("ON CONFLICT")
        clause = sql[start : sql.index("RETURNING", start)]
        assert sql.replace(clause, "").split() == plain.split()
    assert "ON CONFLICT" not in upserts.FIRST_FAMILY_FACTS


def test_a_file_validated_a_chunk_at_a_time_gets_the_answer_of_one_pass(monkeypatch):
    """Import files are read and checked a chunk of rows at a time (memory that does not grow with the file): the
    clean rows, counts and errors are those of the whole file at once, duplicates across chunks included."""
    city = citygen.generate(scale=0.002, seed=3)
    texts, planted = citygen.plant_bad_rows(citygen.csv_texts(city))
    dup = texts["guardians"].splitlines()[1]  # the first guardian again, chunks later
    texts["guardians"] += dup + "\n"

    def validate(chunk: int) -> tuple[dict, list]:
        monkeypatch.setattr(files, "CHUNK", chunk)
        checker = Checker({}, set(), TODAY)
        done = {e: validate_one(e, texts[e], "csv", checker) for e in ENTITIES if e in texts}
        return done, sorted(checker.errors, key=lambda e: (e.entity, e.row, e.field))  # as the job sorts them

    whole, errors = validate(10**9)
    assert validate(7) == (whole, errors)
    last = len(texts["guardians"].splitlines())
    assert ("guardians", last, "guardian_no", "duplicate of row 2") in {
        (e.entity, e.row, e.field, e.reason) for e in errors
    }
    assert {(e.entity, e.row, e.field) for e in errors} >= planted
