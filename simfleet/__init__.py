"""Simulated kiosks for the demo fleet (``main.py simfleet``): each one is the real edge agent
(``edge_agent.Agent``) with a simulated app behind its control socket and a journal that fills with a
citizen's visits, enrolled in the demo center with a certificate of its own; faults (paper out, reader
unplugged, offline) are switched from another terminal. Knows the agent and the contract, never the
kiosk's app, screens or drivers, nor the center's code (docs/simulators.md, "A demo fleet")."""
