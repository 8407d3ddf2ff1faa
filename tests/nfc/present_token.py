"""Put a simulated token on vpcd's virtual reader by hand (for trying `oathdesk burn` without a
real token): `python -m tests.nfc.present_token --serial 8659600000001 --display code.txt`.

The token stays on the reader until Ctrl-C. ``--display FILE`` gets the code the token would
show whenever its button is pressed (here: every second once it has a seed).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from tests.nfc.simulated_token import SimulatedToken, VirtualCard


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--serial", default="8659600000001")
    parser.add_argument("--clock-offset", type=int, default=0, help="token clock minus ours, s")
    parser.add_argument("--device", choices=["token", "fido", "yubikey", "other"], default="token")
    parser.add_argument("--locked", action="store_true")
    parser.add_argument("--t0", action="store_true")
    parser.add_argument("--display", type=Path, help="write the displayed code here")
    args = parser.parse_args()
    token = SimulatedToken(
        serial=args.serial,
        clock_offset=args.clock_offset,
        device=args.device,
        locked=args.locked,
        t0=args.t0,
    )
    card = VirtualCard(token).insert()
    try:
        while True:
            if args.display is not None and token.seed is not None:
                args.display.write_text(token.code() + "\n")
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        card.remove()


if __name__ == "__main__":
    main()
