"""Every enum of every contract document has zh/en labels for every value: the four OpenAPI documents (as the services
build them), the events' JSON Schemas and the AsyncAPI document (as the generator writes them). A vocabulary added
without its labels fails here (and `describe` refuses one whose labels miss a value)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from shared.contracts import documents
from shared.contracts.common import Category, OrgLevel, Vocabulary, describe
from tools.docs import apps, consumer_groups

CJK = re.compile(r"[\u4e00-\u9fff]")


def enums(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema (or AsyncAPI parameter) under `node` that has an `enum`, with its JSON pointer."""
    if isinstance(node, dict):
        if isinstance(node.get("enum"), list):
            yield path, node
        for key, value in node.items():
            if key == "properties" and isinstance(value, dict):  # property names are not keywords
                for name, sub in value.items():
                    yield from enums(sub, f"{path}/properties/{name}")
            elif key not in ("examples", "example", "default", "const"):
                yield from enums(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from enums(value, f"{path}/{i}")


def every_document() -> dict[str, Any]:
    docs: dict[str, Any] = {f"openapi/{name}": app.openapi() for name, app in apps().items()}
    docs["asyncapi"] = documents.asyncapi(consumer_groups())
    docs |= {f"schemas/{spec.type}": documents.schema_of(spec) for spec in documents.published()}
    return docs


def unlabelled(doc: Any) -> list[str]:
    """Where an enum lacks a well-formed `zh / en` label for some value."""
    out = []
    for where, schema in enums(doc):
        labels = schema.get("x-enum-descriptions")
        if not isinstance(labels, list) or len(labels) != len(schema["enum"]):
            out.append(f"{where}: {schema['enum']} has no labels")
            continue
        for value, label in zip(schema["enum"], labels, strict=True):
            zh, _, en = str(label).partition(" / ")
            if not (CJK.search(zh) and en.strip() and not CJK.search(en)):
                out.append(f"{where}: {value!r} labelled {label!r}, not 'zh / en'")
            elif f"* `{value}`: {label}" not in schema.get("description", ""):
                out.append(f"{where}: {value!r} missing from the description")
    return out


DOCS = every_document()


@pytest.mark.parametrize("name", sorted(DOCS))
def test_every_enum_value_has_zh_and_en_labels(name: str) -> None:
    assert unlabelled(DOCS[name]) == []


def test_the_documents_have_enums_to_check() -> None:
    """The walk finds the vocabularies (so an empty pass above means something)."""
    found = {schema.get("title") for doc in DOCS.values() for _, schema in enums(doc)}
    assert {"Category", "CaseState", "ReferralState", "SpecialGroup", "TeamRole", "Role", "MissReason"} <= found
    assert len([1 for _, _ in enums(DOCS["asyncapi"])]) >= 20


def test_the_check_catches_a_missing_label() -> None:
    bad = {"components": {"schemas": {"X": {"type": "string", "enum": ["a", "b"]}}}}
    assert unlabelled(bad) == ["/components/schemas/X: ['a', 'b'] has no labels"]
    half = {"type": "string", "enum": ["a"], "x-enum-descriptions": ["甲 / "], "description": "* `a`: 甲 / "}
    assert unlabelled(half) == [": 'a' labelled '甲 / ', not 'zh / en'"]
    with pytest.raises(ValueError, match="no zh/en labels for b"):
        describe({"enum": ["a", "b"]}, {"a": ("甲", "A")})


def test_a_vocabulary_declares_each_code_once_with_both_labels() -> None:
    """A member is its code (lookup by value, equal to the string) and carries its labels; one without both labels
    cannot be declared."""
    assert Category("left_behind") is Category.LEFT_BEHIND == "left_behind"
    assert (Category.LEFT_BEHIND.zh, Category.LEFT_BEHIND.en) == ("留守儿童", "Left-behind child")
    assert Category.labels()[Category.FAMILY_CONFLICT] == ("家庭矛盾", "Family conflict")
    with pytest.raises(TypeError, match="'b' needs its zh and en labels"):

        class Half(Vocabulary):
            A = "a", "甲", "A"
            B = "b", "乙"


def test_a_vocabulary_part_of_another_takes_its_members_codes_and_labels() -> None:
    class Lower(Vocabulary):
        SCHOOL = OrgLevel.SCHOOL
        CLASS = OrgLevel.CLASS

    assert list(Lower) == ["school", "class"]
    assert Lower("class") is Lower.CLASS != OrgLevel.GRADE
    assert Lower.labels() == {Lower.SCHOOL: ("学校", "School"), Lower.CLASS: ("班级", "Class")}
