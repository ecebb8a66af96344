"""Coverage-guided fuzzing of every parser that takes input from outside (docs/fuzzing.md).

Each area module (``fuzz/<area>.py``) exposes ``TARGETS``: name -> function of one ``bytes`` input that
feeds it to the code under test and returns quietly when the input was handled (accepted, or refused
with the error the code documents for bad input). Anything else escaping -- another exception, a
hang, a crash -- is a finding. ``fuzz.run`` drives a target with atheris; ``tests/fuzz`` runs every
target briefly inside ``scripts/test``; ``scripts/fuzz`` is the long run.
"""
