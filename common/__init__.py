"""What every process of the project shares and nothing else: the error base, the CLI runner, files
written safely, the kiosk's local hand-offs (event journal, control socket) and the one MQTT link.

Imports only the standard library and ``contract``; every other package may import it.
"""
