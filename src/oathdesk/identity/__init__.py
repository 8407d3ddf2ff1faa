"""Operators' sign-in with Microsoft Entra ID (OpenID Connect): an adapter at the edge.

``settings`` holds the app registration's values, ``discovery`` reads the tenant's OpenID
configuration, ``tokens`` checks ID tokens (signature from the JWKS, issuer, audience, tenant,
nonce, times) and reads the roles, and ``flow`` runs the authorization code flow through msal.
The web layer only redirects and calls these; the vault stores the operators and the settings.
"""
