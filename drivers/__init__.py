"""Hardware drivers: one small interface per device kind, each with a real backend and a simulator."""
