"""Programming Token2 programmable TOTP tokens over PC/SC (NFC or USB).

``sm4``, ``apdu`` and ``models`` are the pure protocol (facts from
shared/docs/token2-programming-protocol.md, implemented here from scratch); the PC/SC transport
and the burn procedure sit on top of them.
"""
