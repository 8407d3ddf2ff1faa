"""Network and TLS failures inside msal (it calls the identity platform through requests), told
as one line naming the host. Graph's app sign-in (graph/auth.py) and the operators' sign-in
(identity/flow.py) both go through msal; each raises its own error, with its own advice."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def reaching(
    host: str, error: Callable[[str], Exception], *, tls_advice: str, network_advice: str
) -> Iterator[None]:
    """Raise ``error(one line)`` for a TLS or network failure inside: never requests' own text
    (it can quote a whole URL with its query)."""
    import requests  # msal's own dependency; loaded with msal, not before

    try:
        yield
    except requests.exceptions.SSLError:
        raise error(f"TLS verification failed for {host}; {tls_advice}") from None
    except requests.exceptions.RequestException as failure:
        raise error(
            f"cannot reach the identity platform at {host} ({type(failure).__name__}); "
            f"{network_advice}"
        ) from None
