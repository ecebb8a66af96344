"""The queue at the counters (issue 13, docs/queue.md): tickets' life, calls, counters, officers'
sessions, statistics, expected wait, the hall's announcements and the publisher of its events.
Nothing is imported here: ``fleet.store.schema`` imports the tables, and the pages import what they use."""
