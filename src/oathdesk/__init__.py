"""oathdesk: provision and look after OATH TOTP hardware tokens for Microsoft Entra ID.

The package is layered so that a newcomer can find things quickly:

- ``otp``, ``seed`` and ``formats``: the functional core, pure functions with no I/O.
- ``vault``: storage, encryption, token lifecycle and the audit chain.
- ``services``: one module per use case (reveal, import, burn, Entra sync) holding the policy.
- ``nfc`` and ``graph``: adapters to the outside world (PC/SC readers, Microsoft Graph).
- ``cli`` and ``web``: thin interfaces that parse, call a service and render.
"""

__version__ = "0.1.0"
