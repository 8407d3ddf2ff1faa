"""The REST API under ``/api/v1``: everything the CLI does on the vault, for scripts and tools.

``router`` is mounted by the application factory in ``oathdesk.web.app``. Every route answers
failures as JSON with a stable code (``errors.ApiRoute``) and authenticates with an API key
(``auth.api_actor``); roles, policies and audit are the vault's and the services'. See docs/api.md.
"""

from __future__ import annotations

from fastapi import APIRouter

from oathdesk.web.api import audit, exports, imports, operators, reveal, settings, tokens, users
from oathdesk.web.api.errors import ApiRoute, from_oathdesk_error

router = APIRouter(prefix="/api/v1", route_class=ApiRoute)
# Reveals first: routes are matched in order, and the reveal is the hot path (benchmarked).
for module in (reveal, users, tokens, settings, audit, imports, exports, operators):
    router.include_router(module.router)

# The application's own error handlers answer /api/ errors raised outside these routes (in a
# middleware, say) with this, so those have the same shape.
error_response = from_oathdesk_error
