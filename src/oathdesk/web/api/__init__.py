"""The REST API under ``/api/v1``: everything the CLI does on the vault, for scripts and tools.

``router`` is mounted by the application factory in ``oathdesk.web.app``.
"""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1")
