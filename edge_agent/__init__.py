"""Edge agent: owns the MQTT session, the durable outbox and the center's commands."""

__version__ = "0.1.0"
