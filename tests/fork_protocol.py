"""The framing shared by the tests' fork server (tests/cli_forkserver.py) and its client
(tests/cli_forks.py); the protocol is described in the server's docstring."""

from __future__ import annotations

import struct

# The request's JSON length, sent with the three file descriptors.
LENGTH = struct.Struct("!I")
# The child's pid, then its exit status.
NUMBER = struct.Struct("!q")
