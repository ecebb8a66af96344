"""Edge agent: owns the MQTT session, the durable outbox and the center's commands."""
