"""The Microsoft Graph adapter: msal for tokens, httpx for calls, nothing about the vault.

``settings`` (where to connect), ``auth`` (access tokens), ``client`` (HTTP with throttling and
paging), ``errors`` (Graph error bodies as one-line messages), ``api`` (the hardware OATH calls).
"""
