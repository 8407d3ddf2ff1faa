// Seeds in the browser: the same acceptance and the same one-line refusals as oathdesk.seed
// (src/oathdesk/seed.py), so the toolset page and the CLI agree on what a secret is. The browser
// tests compare both on the same inputs. Nothing here touches the network.

export const MIN_SECRET_BYTES = 10;
export const DEFAULT_SECRET_BYTES = { sha1: 20, sha256: 32, sha512: 64 };

export class SeedError extends Error {}

const BASE32_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const BASE32_HINTS = {
  0: "0 is not base32; did you mean O?",
  1: "1 is not base32; did you mean I or L?",
  8: "8 is not base32; did you mean B?",
  9: "9 is not base32; did you mean g?",
};
const EMPTY = "the secret is empty; paste the base32 key Entra shows under 'Can't scan?'";
const WRONG_SCHEMES = {
  phonefactor:
    "this is the Microsoft Authenticator QR code, which tokens cannot use; on " +
    "aka.ms/mfasetup choose 'I want to use a different authenticator app' to get a TOTP one",
  "otpauth-migration":
    "this is a Google Authenticator export holding several accounts; export or show " +
    "the single account instead",
  fido: "this is a passkey (FIDO) QR code, not a TOTP secret; use the authenticator-app QR",
};

const isHex = (text) => /^[0-9a-fA-F]+$/.test(text);
const stripSeparators = (text) => text.replace(/[ \t\r\n-]/g, "");

export function encodeBase32(bytes) {
  let out = "";
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = ((buffer << 8) | byte) & 0xffff;
    bits += 8;
    while (bits >= 5) {
      out += BASE32_ALPHABET[(buffer >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32_ALPHABET[(buffer << (5 - bits)) & 31];
  return out;
}

export function decodeBase32(text) {
  const cleaned = stripSeparators(text).toUpperCase();
  if (!cleaned) throw new SeedError(EMPTY);
  const body = cleaned.replace(/=+$/, "");
  const padding = cleaned.length - body.length;
  for (const char of body) {
    if (BASE32_ALPHABET.includes(char)) continue;
    if (char in BASE32_HINTS) throw new SeedError(`${BASE32_HINTS[char]} Base32 uses only A-Z and 2-7`);
    if (char === "=") throw new SeedError("'=' padding may only appear at the end of a base32 secret");
    throw new SeedError(
      "the secret contains characters that are neither base32 (A-Z, 2-7) nor hex; " +
        "copy it again from the source",
    );
  }
  if ([1, 3, 6].includes(body.length % 8)) {
    throw new SeedError(
      `a base32 secret cannot be ${body.length} characters long; a character is missing or extra`,
    );
  }
  if (padding && (body.length + padding) % 8) {
    throw new SeedError("the base32 padding ('=') is wrong; remove the '=' characters");
  }
  const bytes = [];
  let buffer = 0;
  let bits = 0;
  for (const char of body) {
    buffer = ((buffer << 5) | BASE32_ALPHABET.indexOf(char)) & 0xfff;
    bits += 5;
    if (bits >= 8) {
      bytes.push((buffer >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return new Uint8Array(bytes); // leftover bits (< 8) are padding, as in Python's b32decode
}

export function encodeHex(bytes) {
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

export function decodeHex(text) {
  let cleaned = stripSeparators(text);
  if (cleaned.startsWith("0x") || cleaned.startsWith("0X")) cleaned = cleaned.slice(2);
  if (!isHex(cleaned)) {
    throw new SeedError("the secret is not valid hex (0-9, a-f); copy it again from the source");
  }
  if (cleaned.length % 2) {
    throw new SeedError(
      `a hex secret needs an even number of digits, this one has ${cleaned.length}; ` +
        "a digit is missing or extra",
    );
  }
  const bytes = new Uint8Array(cleaned.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(cleaned.slice(2 * i, 2 * i + 2), 16);
  return bytes;
}

function checkedLength(secret) {
  if (secret.length < MIN_SECRET_BYTES) {
    throw new SeedError(
      `the secret is only ${secret.length} bytes; at least ${MIN_SECRET_BYTES} are needed, ` +
        "so part of it is probably missing",
    );
  }
  return secret;
}

// Percent-decoding that never throws (bad escapes stay as they are, invalid UTF-8 becomes U+FFFD).
function unquote(text, plusIsSpace = false) {
  const source = plusIsSpace ? text.replace(/\+/g, " ") : text;
  const bytes = [];
  const encoder = new TextEncoder();
  for (let i = 0; i < source.length; ) {
    if (source[i] === "%" && isHex(source.slice(i + 1, i + 3)) && i + 3 <= source.length) {
      bytes.push(parseInt(source.slice(i + 1, i + 3), 16));
      i += 3;
    } else {
      const codePoint = source.codePointAt(i);
      const char = String.fromCodePoint(codePoint);
      bytes.push(...encoder.encode(char));
      i += char.length;
    }
  }
  return new TextDecoder().decode(new Uint8Array(bytes));
}

function parseQuery(query) {
  const values = {};
  for (const field of query.split("&")) {
    if (!field) continue;
    const at = field.indexOf("=");
    const name = unquote(at < 0 ? field : field.slice(0, at), true);
    const value = at < 0 ? "" : unquote(field.slice(at + 1), true);
    (values[name] ||= []).push(value);
  }
  return values;
}

function intParam(value, name) {
  if (value === null || value === "") return null;
  if (!/^[0-9]+$/.test(value)) throw new SeedError(`the URI's ${name} parameter must be a whole number`);
  return parseInt(value, 10);
}

function parseOtpauth(text) {
  // Split like urllib.parse.urlsplit: scheme://netloc/path?query#fragment
  const rest = text.slice(text.indexOf("://") + 3).split("#")[0];
  const netlocEnd = rest.search(/[/?]/);
  const netloc = netlocEnd < 0 ? rest : rest.slice(0, netlocEnd);
  const afterNetloc = netlocEnd < 0 ? "" : rest.slice(netlocEnd);
  const queryAt = afterNetloc.indexOf("?");
  const path = queryAt < 0 ? afterNetloc : afterNetloc.slice(0, queryAt);
  const query = queryAt < 0 ? "" : afterNetloc.slice(queryAt + 1);
  const kind = netloc.toLowerCase();
  if (kind === "hotp") {
    throw new SeedError(
      "this is an HOTP (counter-based) secret; Entra and Token2 TOTP tokens need a " +
        "time-based (otpauth://totp) one",
    );
  }
  if (kind !== "totp") {
    throw new SeedError("this otpauth URI is not otpauth://totp/...; copy the QR code again");
  }
  const values = parseQuery(query);
  const single = (name) => (values[name] ? values[name][0].trim() : null);
  const rawSecret = single("secret");
  if (!rawSecret) throw new SeedError("the otpauth URI has no secret= parameter; copy the QR code again");
  const secret = decodeBase32(rawSecret);
  const label = unquote(path.replace(/^\/+/, ""));
  const colon = label.lastIndexOf(":");
  const labelIssuer = colon < 0 ? "" : label.slice(0, colon);
  const account = colon < 0 ? label : label.slice(colon + 1);
  const issuer = single("issuer") || labelIssuer.trim() || null;
  let algorithm = null;
  const rawAlgorithm = single("algorithm");
  if (rawAlgorithm !== null) {
    algorithm = rawAlgorithm.toLowerCase().replace(/-/g, "");
    if (!(algorithm in DEFAULT_SECRET_BYTES)) {
      throw new SeedError(
        `the URI asks for algorithm '${rawAlgorithm}'; only SHA1, SHA256 and SHA512 exist`,
      );
    }
  }
  const digits = intParam(single("digits"), "digits");
  if (digits !== null && (digits < 6 || digits > 10)) {
    throw new SeedError(`the URI asks for ${digits} digits; oathdesk supports 6 to 10`);
  }
  const period = intParam(single("period"), "period");
  if (period !== null && period < 1) {
    throw new SeedError("the URI's period must be a positive number of seconds");
  }
  return {
    secret: checkedLength(secret),
    form: "otpauth-uri",
    algorithm,
    digits,
    period,
    issuer,
    account: account.trim() || null,
  };
}

function plain(secret, form) {
  return { secret: checkedLength(secret), form, algorithm: null, digits: null, period: null, issuer: null, account: null };
}

/** Parse a pasted secret; throws SeedError with the CLI's one-line hint, never the secret. */
export function parseSeed(text) {
  const stripped = text.trim();
  if (!stripped) throw new SeedError(EMPTY);
  const lowered = stripped.toLowerCase();
  if (lowered.startsWith("otpauth://")) return parseOtpauth(stripped);
  const colon = lowered.indexOf(":");
  const scheme = colon < 0 ? lowered : lowered.slice(0, colon);
  if (colon >= 0 && scheme in WRONG_SCHEMES) throw new SeedError(WRONG_SCHEMES[scheme]);
  if (colon >= 0 && scheme === "hex") return plain(decodeHex(stripped.slice(4)), "hex");
  if (colon >= 0 && scheme === "base32") return plain(decodeBase32(stripped.slice(7)), "base32");
  if (stripped.includes("://") || /^(https?:|www\.)/.test(lowered)) {
    throw new SeedError(
      "this is a web address, not a secret; paste the secret key or the otpauth:// QR text",
    );
  }
  const compact = stripSeparators(stripped);
  if (/^[0-9]+$/.test(compact)) {
    throw new SeedError(
      "the input is all digits, which is usually the token's serial number; paste the " +
        "secret key (base32 letters A-Z and digits 2-7) instead",
    );
  }
  const looksHex = compact.startsWith("0x") || compact.startsWith("0X") || (isHex(compact) && /[0189]/.test(compact));
  if (looksHex) return plain(decodeHex(compact), "hex");
  return plain(decodeBase32(compact), "base32");
}

// Like Python's urllib.parse.quote: keep unreserved characters and `safe`, %XX the rest (UTF-8).
function quote(text, safe) {
  let out = "";
  for (const byte of new TextEncoder().encode(text)) {
    const char = String.fromCharCode(byte);
    out += /[A-Za-z0-9_.~-]/.test(char) || safe.includes(char) ? char : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/** The otpauth://totp URI, built exactly like oathdesk.seed.build_otpauth_uri. */
export function buildOtpauthUri(secret, { account, issuer = null, algorithm = "sha1", digits = 6, period = 30 }) {
  const label = quote(issuer ? `${issuer}:${account}` : account, "@:");
  const params = [`secret=${encodeBase32(secret)}`];
  if (issuer) params.push(`issuer=${quote(issuer, "")}`);
  params.push(`algorithm=${algorithm.toUpperCase()}`, `digits=${digits}`, `period=${period}`);
  return `otpauth://totp/${label}?${params.join("&")}`;
}
