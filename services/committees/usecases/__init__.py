"""Use cases: one function per operation; each runs in one transaction, loads, lets the domain decide, writes and
adds its events. Writes run in the transaction `shared.idempotency.write` opens (so a stored answer commits with
the change); reads open their own when they write an audit row."""
