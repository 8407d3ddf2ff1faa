"""Policy settings typed in a form: each value parsed and range-checked, then saved together.

The ranges are the ones `oathdesk settings set` accepts; ``VaultSettings.changed`` checks the
types again when the vault saves them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from oathdesk.errors import InvalidInput
from oathdesk.otp import PROFILE_HELP, PROFILE_NAMES
from oathdesk.vault.roles import Permission, require
from oathdesk.vault.vault import Actor, Vault, VaultSettings

PROFILES = tuple(name for name in PROFILE_NAMES if name != "custom")
# Whole-number settings: (least, most).
RANGES: dict[str, tuple[int, int]] = {
    "retention_days": (0, 3650),
    "undelivered_warning_days": (1, 3650),
    "max_tokens_per_user": (1, 100),
    "reveal_limit_per_user": (0, 1000),
    "reveal_limit_per_operator": (0, 100_000),
}
LABELS = {
    "acceptance_profile": "Acceptance profile",
    "retention_days": "Days to keep a delivered token's seed",
    "undelivered_warning_days": "Warn about undelivered tokens after (days)",
    "max_tokens_per_user": "Tokens per user (Entra allows 5)",
    "reveal_limit_per_user": "Codes per user in 24 hours",
    "reveal_limit_per_operator": "Codes per operator in 24 hours",
    "four_eyes": "Four-eyes rule: a second operator approves each code",
}
PROFILE_CHOICES = {name: PROFILE_HELP[name] for name in PROFILES}


class SettingsRefused(InvalidInput):
    """One or more values are not acceptable; ``problems`` says which and why."""

    def __init__(self, problems: dict[str, str]) -> None:
        first = next(iter(problems.values()))
        extra = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"{first}{extra}; nothing was changed")
        self.problems = problems


def _parse(name: str, text: str) -> Any:
    text = text.strip()
    if name == "acceptance_profile":
        if text not in PROFILES:
            raise InvalidInput(f"choose one of {', '.join(PROFILES)}")
        return text
    if name == "four_eyes":
        if text.lower() in ("on", "true", "yes", "1"):
            return True
        if text.lower() in ("", "off", "false", "no", "0"):
            return False
        raise InvalidInput("the four-eyes rule is on or off")
    least, most = RANGES[name]
    if not text.lstrip("-").isdigit():
        raise InvalidInput(f"a whole number from {least} to {most}")
    value = int(text)
    if not least <= value <= most:
        raise InvalidInput(f"a whole number from {least} to {most}")
    return value


def parse_settings(form: Mapping[str, str]) -> dict[str, Any]:
    """Typed values for every setting named in ``form``; a checkbox left out means off."""
    values: dict[str, Any] = {}
    problems: dict[str, str] = {}
    for field in fields(VaultSettings):
        if field.name not in form and field.name != "four_eyes":
            continue
        try:
            values[field.name] = _parse(field.name, form.get(field.name, ""))
        except InvalidInput as refused:
            problems[field.name] = f"{LABELS[field.name]}: {refused.message}"
    if problems:
        raise SettingsRefused(problems)
    return values


@dataclass(frozen=True)
class SettingsChange:
    settings: VaultSettings
    changed: dict[str, Any]


def change_settings(vault: Vault, actor: Actor, form: Mapping[str, str]) -> SettingsChange:
    """Save what differs from the current settings (one audited change), or refuse all."""
    require(actor, Permission.SETTINGS)
    values = parse_settings(form)
    current = vault.settings()
    changed = {name: value for name, value in values.items() if getattr(current, name) != value}
    if not changed:
        return SettingsChange(current, {})
    return SettingsChange(vault.update_settings(actor, **changed), changed)
