"""The helpdesk web console (server-rendered pages) and the REST API, on FastAPI.

Only interfaces live here: they parse requests, call services and the vault, and render. Nothing
outside ``oathdesk.web`` imports it.
"""
