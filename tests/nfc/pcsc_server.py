"""Run the real pcscd with vsmartcard's vpcd driver for the tests, and stop it by its pid.

pcscd 1.9 listens on /run/pcscd/pcscd.comm whatever the environment says (only the client
library honours PCSCLITE_CSOCK_NAME), and vpcd has one port, 35963. So one pcscd per machine:
a file lock keeps two test runs (or two xdist workers) from starting theirs at once, and a
pcscd that is already running with the virtual reader is used rather than fought.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from smartcard import scard

VPCD_DRIVER = Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so")
READER_CONF = f"""FRIENDLYNAME "Virtual PCD"
DEVICENAME   /dev/null:0x8C7B
LIBPATH      {VPCD_DRIVER}
CHANNELID    0x8C7B
"""
LOCK_FILE = Path("/tmp/oathdesk-pcsc-tests.lock")
PID_FILE = Path("/run/pcscd/pcscd.pid")


def missing() -> str | None:
    """Why pcscd with vpcd cannot run here (None: it can)."""
    if shutil.which("pcscd") is None:
        return "pcscd is not installed (apt-get install pcscd)"
    if not VPCD_DRIVER.exists():
        return "vsmartcard-vpcd is not installed (apt-get install vsmartcard-vpcd)"
    return None


def virtual_readers() -> list[str]:
    result, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if result != scard.SCARD_S_SUCCESS:
        return []
    try:
        result, names = scard.SCardListReaders(context, [])
        if result != scard.SCARD_S_SUCCESS:
            return []
        return [str(name) for name in names if "Virtual PCD" in str(name)]
    finally:
        scard.SCardReleaseContext(context)


def _alive(pid_file: Path) -> bool:
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return False
    return True


@contextmanager
def exclusive(timeout: float = 600) -> Iterator[None]:
    """Hold the machine-wide lock on the virtual reader (other test runs wait)."""
    with LOCK_FILE.open("a") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError("another test run holds the virtual reader") from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def running_pcscd(workdir: Path) -> Iterator[str]:
    """pcscd in the foreground with only the vpcd reader; yields the reader's name."""
    if _alive(PID_FILE) and virtual_readers():
        yield virtual_readers()[0]  # someone's pcscd already serves the virtual reader
        return
    conf_dir = workdir / "reader.conf.d"
    conf_dir.mkdir(parents=True, exist_ok=True)
    (conf_dir / "vpcd").write_text(READER_CONF)
    log = (workdir / "pcscd.log").open("wb")
    process = subprocess.Popen(
        ["pcscd", "-f", "-a", "-c", str(conf_dir)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 15
        while not (names := virtual_readers()):
            if process.poll() is not None or time.monotonic() > deadline:
                log.flush()
                tail = (workdir / "pcscd.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"pcscd did not offer the virtual reader:\n{tail}")
            time.sleep(0.1)
        yield names[0]
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
