// TOTP (RFC 6238) in the browser with WebCrypto's HMAC: the toolset page computes codes without
// sending the secret anywhere. Same truncation and digits as src/oathdesk/otp.py.

const HASH_NAMES = { sha1: "SHA-1", sha256: "SHA-256", sha512: "SHA-512" };

/** WebCrypto exists only in secure contexts (HTTPS, or http://127.0.0.1 / localhost). */
export function webCryptoAvailable() {
  return Boolean(globalThis.crypto && globalThis.crypto.subtle);
}

/** A non-extractable HMAC key for the secret; the key object cannot be read back. */
export function importHmacKey(secret, algorithm) {
  const hash = HASH_NAMES[algorithm];
  if (!hash) throw new Error(`unknown algorithm ${algorithm}`);
  return crypto.subtle.importKey("raw", secret, { name: "HMAC", hash }, false, ["sign"]);
}

function counterBytes(counter) {
  const bytes = new Uint8Array(8);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, Math.floor(counter / 2 ** 32));
  view.setUint32(4, counter >>> 0);
  return bytes;
}

/** HOTP (RFC 4226) for each counter in [firstCounter, firstCounter + count). */
export async function hotpCodes(key, firstCounter, count, digits) {
  const modulus = 10 ** digits;
  const codes = [];
  for (let counter = firstCounter; counter < firstCounter + count; counter++) {
    const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, counterBytes(counter)));
    const offset = mac[mac.length - 1] & 0x0f;
    const value = new DataView(mac.buffer).getUint32(offset) & 0x7fffffff;
    codes.push(String(value % modulus).padStart(digits, "0"));
  }
  return codes;
}

/** The RFC 6238 time step holding the instant `seconds` (Unix time). */
export function stepAt(seconds, period) {
  return Math.floor(seconds / period);
}

/** Codes for steps around `seconds`: `past` before, the current one, `future` after. */
export async function totpWindow(secret, { algorithm, digits, period }, seconds, past, future) {
  const key = await importHmacKey(secret, algorithm);
  const current = stepAt(seconds, period);
  const first = Math.max(0, current - past); // no steps before 1970
  const codes = await hotpCodes(key, first, current + future + 1 - first, digits);
  return codes.map((code, index) => {
    const step = first + index;
    return { offset: step - current, step, code, start: step * period, end: (step + 1) * period };
  });
}

/** "123 456", "1234 5678", "12 345 678 90"-style groups for reading out loud. */
export function groupCode(code) {
  if (code.length === 6) return `${code.slice(0, 3)} ${code.slice(3)}`;
  if (code.length === 8) return `${code.slice(0, 4)} ${code.slice(4)}`;
  return code.replace(/(\d{3})(?=\d)/g, "$1 ");
}
