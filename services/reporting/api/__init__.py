"""HTTP routes of the reporting service: thin routers (parse, authorize, call one use case)."""
