"""The fleet's alarm rules: which alarm each report of a kiosk calls for, with which severity, and how
the active alarms are brought in line with it (``rules``), plus the sweeps that keep them true across
crashes and restarts (``fleet.ingest.duties``).

The rules are *level-based*: every heartbeat and status says what should be active for the kiosk now,
and ``reconcile.AlarmRun`` raises what is missing and clears what is no longer so. A message processed twice
(at-least-once delivery, a worker that crashed before its ack) changes nothing the second time, and a
lost edge (a crash between storing a report and raising its alarm) is repaired by the next report.
"""
