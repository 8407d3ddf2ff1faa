"""File formats: pure functions from bytes to typed records plus problems, and back. No I/O.

Callers read and write the files; every parser here takes bytes, never raises on any input, and
reports every problem at once with its line and column (see ``problems``). docs/formats.md lists
the modules and the problem codes.
"""
