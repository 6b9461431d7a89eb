"""The test runs check every payload a service built itself (`events.Built`) against its contract as it is written
to the outbox, so a flow the tests drive cannot write a built event the contract would refuse."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from shared import outbox
from shared.contracts.committees import StaffLeft
from shared.events import Built

WHEN = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)


def test_the_test_runs_check_built_payloads():
    assert outbox.CHECK_BUILT  # tests/conftest.py and scripts/test.sh set HSS_CHECK_BUILT_EVENTS=1


def test_a_built_payload_as_its_contract_writes_it_becomes_an_outbox_row():
    fields = {"staff_id": "t000001", "org_path": "/620400/620402/s1", "occurred_at": "2026-12-02T08:00:00Z"}
    (row,) = outbox.outbox_rows([Built(StaffLeft, fields)])
    assert (row.key, row.type) == ("t000001", "committees.staff.left.v1")


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"staff_id": 7, "org_path": "/620400", "occurred_at": "2026-12-02T08:00:00Z"}, ValidationError),
        ({"staff_id": "t1", "org_path": "/620400"}, ValidationError),  # a field left out
        ({"org_path": "/620400", "staff_id": "t1", "occurred_at": "2026-12-02T08:00:00Z"}, ValueError),  # order
        ({"staff_id": "t1", "org_path": "/620400", "occurred_at": WHEN}, None),  # a datetime orjson writes alike
    ],
)
def test_a_built_payload_its_contract_would_refuse_or_write_otherwise_is_not_written(fields, error):
    if error is None:
        outbox.outbox_rows([Built(StaffLeft, fields)])
        return
    with pytest.raises(error):
        outbox.outbox_rows([Built(StaffLeft, fields)])
