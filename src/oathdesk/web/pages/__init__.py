"""The console's pages; each module exposes ``router`` and ``oathdesk.web.app`` includes it."""
