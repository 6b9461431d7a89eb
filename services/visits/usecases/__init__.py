"""Use cases of the visits service: each owns its transaction and writes its events to the outbox with its state."""
