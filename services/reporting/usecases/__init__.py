"""Use cases of the reporting service: figures documents, exports, gauges, rebuild by replay, consistency check."""
