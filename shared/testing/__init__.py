"""Test helpers: the real stack per session, clean schemas and topics per test, real HTTP servers."""
