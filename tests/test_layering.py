"""The house rules of the architecture, checked: what each layer may import."""

from __future__ import annotations

import subprocess
import sys

import pytest

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DP"


def modules_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        env={"OATHDESK_SECRET": SECRET, "PATH": ""},
    )
    return set(out.stdout.split())


@pytest.mark.parametrize(
    "command", [["code"], ["codes", "--json"], ["check", "123456"], ["seed", "show"]]
)
def test_code_generator_commands_need_no_vault_or_web(command: list[str]) -> None:
    loaded = modules_after(f"from oathdesk.cli.main import run\nrun({command!r})")
    for heavy in ("sqlalchemy", "fastapi", "starlette", "alembic", "httpx", "smartcard"):
        assert heavy not in loaded, f"`oathdesk {' '.join(command)}` imports {heavy}"


def test_fast_code_path_imports_no_click() -> None:
    loaded = modules_after(
        "import sys\nsys.argv = ['oathdesk', 'code']\nfrom oathdesk.cli.entry import main\nmain()"
    )
    assert "click" not in loaded
    assert "rich" not in loaded


@pytest.mark.parametrize(
    "module",
    [
        "oathdesk.otp",
        "oathdesk.seed",
        "oathdesk.formats.entra_csv",
        "oathdesk.vault.vault",
        "oathdesk.services.reveal",
        "oathdesk.services.importer",
    ],
)
def test_core_vault_and_services_import_no_interface(module: str) -> None:
    loaded = modules_after(f"import {module}")
    for interface in ("click", "rich", "fastapi", "starlette", "jinja2", "oathdesk.cli"):
        assert not any(name == interface or name.startswith(interface + ".") for name in loaded), (
            f"{module} imports {interface}"
        )
