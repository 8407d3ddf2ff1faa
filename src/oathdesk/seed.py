"""Seeds (shared secrets): parse what an operator pastes or scans, convert, generate, build URIs.

Pure functions, no I/O. (QR images in and out live in ``oathdesk.qr``.)

INTERFACE CONTRACT (implemented by the seed work; other modules rely on these names):

    class SeedForm(StrEnum): BASE32, HEX, OTPAUTH_URI

    @dataclass(frozen=True) class ParsedSeed:
        secret: bytes            # raw key bytes; repr must NOT show it
        form: SeedForm           # which form the input was in
        algorithm: str | None    # "sha1" | "sha256" | "sha512" from an otpauth URI, else None
        digits: int | None
        period: int | None
        issuer: str | None
        account: str | None

    def parse_seed(text: str) -> ParsedSeed   # raises oathdesk.errors.SeedError (one line, no secret)
"""
