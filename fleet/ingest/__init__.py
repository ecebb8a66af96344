"""The fleet's MQTT ingest: everything kiosks publish (docs/mqtt.md), stored through ``fleet.store``.

- ``process.Processor``: one message, handled (topic checked against the registry, payload parsed by
  the contract, effect stored, the kiosk's alarms reconciled); no MQTT, so tested with plain calls;
- ``worker.IngestWorker``: one MQTT v5 session on the shared subscription ``$share/fleet/...``
  (``contract.topics.fleet_filters``), manual acks after the store committed;
- ``duties.Duties``: what one worker at a time does for all (lease in the store): silence sweep, alarm
  sweeps, reminders and announcements, publishing commands and configuration;
- ``handlers``: the hook other parts of the center (the queue) use to act on stored events;
- ``supervisor``: ``main.py fleet ingest --workers N`` runs N worker processes and restarts them.
"""
