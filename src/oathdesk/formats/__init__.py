"""File formats: pure functions from bytes to typed records plus problems, and back. No I/O."""
