"""Use cases: they orchestrate the core, the vault and the adapters, and hold the policy checks.

The CLI and the web console call these; neither re-implements a rule.
"""
