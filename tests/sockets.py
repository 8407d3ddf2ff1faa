"""Stream sockets for the tests' fork server and the virtual card: reading whole messages, and
a Unix socket that is listening before its name appears."""

from __future__ import annotations

import os
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


def listening_unix_socket(path: str, backlog: int = 64) -> socket.socket:
    """A socket listening at ``path``, whose name appears only once it listens.

    A client connects as soon as the name exists; a socket bound but not yet listening refuses
    it (ECONNREFUSED), so it is bound under another name and renamed (atomic) after listen().
    """
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    unpublished = f"{path}.binding"
    try:
        listener.bind(unpublished)
        listener.listen(backlog)
        os.rename(unpublished, path)
    except BaseException:
        listener.close()
        raise
    return listener
