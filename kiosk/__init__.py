"""Kiosk core: configuration, flows (pure state machines), sessions, events, i18n."""

__version__ = "0.1.0"
