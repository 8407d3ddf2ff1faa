"""Reading a stream socket in whole messages (the tests' fork server and the virtual card)."""

from __future__ import annotations

import socket


def receive_exactly(sock: socket.socket, size: int) -> bytes:
    """``size`` bytes, or fewer if the other end closed first (b"" when it already had)."""
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data
