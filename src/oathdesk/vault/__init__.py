"""The vault: encrypted seed storage, the token lifecycle and the tamper-evident audit chain.

Nothing here imports click, rich or the web stack. Every public operation of
``oathdesk.vault.vault.Vault`` is one transaction that includes its audit record: all of it
lands, or none of it does.
"""
