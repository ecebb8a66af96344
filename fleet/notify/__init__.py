"""Alarm notifications: e-mail (stdlib ``smtplib``) and webhooks (HTTP POST of JSON), sent from the
store's queue (``fleet.store.notices``) by one process at a time (the ingest's leader), with retries
and backoff on their own thread, so a slow or dead mail server never holds up the ingest.

- ``message``: what a notification says (Vietnamese text, the JSON of a webhook);
- ``senders``: ``EmailSender``, ``WebhookSender``;
- ``notifier``: the sending loop (``Notifier``) and its settings (``NotifySettings``).
"""
