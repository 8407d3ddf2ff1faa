"""Stands for pyscard not installed (oathdesk without the extra "nfc"), first on PYTHONPATH in
tests/test_install_without_nfc.py: importing it fails as a missing package does."""

raise ModuleNotFoundError("No module named 'smartcard' (simulated: pyscard not installed)")
