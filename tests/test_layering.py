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


INTERFACES = (
    "click",
    "rich",
    "fastapi",
    "starlette",
    "jinja2",
    "uvicorn",
    "oathdesk.cli",
    "oathdesk.web",
)

# Everything below the interfaces: the pure core, the vault, the services and the adapters.
LOWER_PACKAGES = ("formats", "vault", "services", "nfc", "graph", "identity")
LOWER_MODULES = (
    "oathdesk.otp",
    "oathdesk.seed",
    "oathdesk.qr",
    "oathdesk.errors",
    "oathdesk.upn",
    "oathdesk.timetext",
    "oathdesk.people",
    "oathdesk.msal_failures",
)


def lower_layer_modules() -> list[str]:
    import pkgutil

    import oathdesk

    found = list(LOWER_MODULES)
    root = oathdesk.__path__[0]
    for package in LOWER_PACKAGES:
        path = f"{root}/{package}"
        found.append(f"oathdesk.{package}")
        found += [
            f"oathdesk.{package}.{info.name}"
            for info in pkgutil.iter_modules([path])
            if not info.ispkg and package + "." + info.name != "vault.migrations"
        ]
    return sorted(found)


def interfaces_in(loaded: set[str]) -> list[str]:
    return [
        name
        for name in INTERFACES
        if any(module == name or module.startswith(name + ".") for module in loaded)
    ]


def test_the_layer_list_is_not_empty() -> None:
    modules = lower_layer_modules()
    assert "oathdesk.services.reveal" in modules
    assert "oathdesk.vault.vault" in modules
    assert len(modules) > 40


def test_core_vault_services_and_adapters_import_no_interface() -> None:
    modules = lower_layer_modules()
    loaded = modules_after("\n".join(f"import {name}" for name in modules))
    if not interfaces_in(loaded):
        return
    # Name the culprits: one process per module, only when something is wrong.
    culprits = {name: interfaces_in(modules_after(f"import {name}")) for name in modules}
    assert not {name: found for name, found in culprits.items() if found}


def test_only_the_nfc_transport_imports_pyscard() -> None:
    """pyscard is the optional extra "nfc": every module but the reader's transport (which the
    reader commands import when they run) loads without it, the CLI and the console too."""
    modules = [name for name in lower_layer_modules() if name != "oathdesk.nfc.transport"]
    modules += ["oathdesk.cli.main", "oathdesk.cli.burn", "oathdesk.cli.tokens", "oathdesk.web.app"]
    loaded = modules_after("\n".join(f"import {name}" for name in modules))
    assert "smartcard" not in loaded
    assert "oathdesk.nfc.transport" not in loaded


def private_imports(package: str) -> list[str]:
    """Each ``from oathdesk.x import _name`` in ``package``'s modules, as "module: x._name"."""
    import ast
    from pathlib import Path

    import oathdesk

    root = Path(oathdesk.__path__[0])
    found = []
    for path in sorted((root / package.replace(".", "/")).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom) or not (node.module or "").startswith(
                "oathdesk"
            ):
                continue
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    found.append(f"{path.relative_to(root)}: {node.module}.{alias.name}")
    return found


@pytest.mark.parametrize(
    "package", ["web", "cli", "services", "vault", "identity", "graph", "formats", "nfc"]
)
def test_no_module_imports_another_modules_private_names(package: str) -> None:
    """What two modules share lives in a module with public names (the console's
    helpdesk_common, reveal_common, signin_common; the CLI's secret_input, lease_prompt): a
    module's underscore helpers may change with that module."""
    assert private_imports(package) == []
