"""The contract's one error: a message or a configuration does not follow docs/mqtt.md.

A ``ValueError``: bad input is a bad value. Every parser of the contract raises this and nothing else
for bad input, whatever the input (size, depth, encoding, types), so a consumer needs one ``except``.
"""

from __future__ import annotations


class ContractError(ValueError):
    """A payload, topic or configuration that the contract refuses; ``message`` names the key."""

    code = "contract"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class SchemaError(ContractError):
    """A value does not fit its schema (configuration files, pushed configuration, message fields)."""

    code = "schema"
