"""The ``oathdesk`` command line: thin click commands that parse, call a service, render."""
