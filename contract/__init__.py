"""The MQTT contract between kiosks and the center (docs/mqtt.md): one package everyone imports.

Standard library only, and nothing of the project: the kiosk, its agent, the allocator, the fleet and
provisioning all build and read messages here, and nowhere else.

- ``topics``: topic builders (``KioskTopics``, ``CenterTopics``), ``parse_topic``, the fleet's filters;
- one frozen type per message, each with ``to_payload()`` and ``parse(bytes)``: ``status.Status``,
  ``health.Health``, ``events.Event`` (a typed payload per kind), ``commands.Command``,
  ``commands.CommandResult``, ``config.ConfigPush``, ``config.ConfigState``, ``tickets.TicketRequest``,
  ``tickets.TicketResponse``, ``tickets.QueueCalled``, ``tickets.AllocatorStatus``;
- ``config``: what the center may push (service areas, rating scale, citizen settings), validated by
  ``schema`` the same way on both sides;
- ``wire``: the one JSON reader (size and depth limits), ids, times; ``errors.ContractError`` is the
  only exception a parser raises for bad input.
"""
