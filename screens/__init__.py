"""Kivy screens: render flow state and forward taps, nothing else."""
