"""The common kit every service uses: settings, db, events, outbox/relay, inbox, HTTP, auth, metrics."""
