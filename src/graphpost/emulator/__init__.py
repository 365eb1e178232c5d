"""Emulator mode's test controls (``/_graphpost/``): an edge in front of the other apps."""
