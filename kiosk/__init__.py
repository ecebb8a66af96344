"""The kiosk app's logic: configuration, flows (pure state machines), the core that runs them, effect
handlers, dossier look-up, ratings, queue numbers, i18n. No window here (``screens/``), no MQTT (the
agent)."""

from pathlib import Path

__version__ = "0.1.0"

#: the demo configuration: every device simulated (``main.py kiosk --simulate``, tests, benchmarks)
SIMULATE_CONFIG = Path(__file__).resolve().parent.parent / "config" / "simulate.toml"
