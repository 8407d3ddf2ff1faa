// A small QR Code encoder (ISO/IEC 18004, model 2) for the toolset page: byte mode only, error
// correction L/M/Q/H, versions 1-40, automatic mask selection by the standard's penalty rules.
// It runs in the browser because the text (an otpauth URI) holds the secret, which must never
// reach the server. Written for oathdesk; tested against segno's matrices and zxing-cpp.

// Error-correction codewords per block and number of blocks, per level and version (ISO/IEC
// 18004 table 9). Index 0 is unused so that index = version.
const EC_PER_BLOCK = {
  L: [0, 7, 10, 15, 20, 26, 18, 20, 24, 30, 18, 20, 24, 26, 30, 22, 24, 28, 30, 28, 28,
    28, 28, 30, 30, 26, 28, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30],
  M: [0, 10, 16, 26, 18, 24, 16, 18, 22, 22, 26, 30, 22, 22, 24, 24, 28, 28, 26, 26, 26,
    26, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28],
  Q: [0, 13, 22, 18, 26, 18, 24, 18, 22, 20, 24, 28, 26, 24, 20, 30, 24, 28, 28, 26, 30,
    28, 30, 30, 30, 30, 28, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30],
  H: [0, 17, 28, 22, 16, 22, 28, 26, 26, 24, 28, 24, 28, 22, 24, 24, 30, 28, 28, 26, 28,
    30, 24, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30],
};
const BLOCKS = {
  L: [0, 1, 1, 1, 1, 1, 2, 2, 2, 2, 4, 4, 4, 4, 4, 6, 6, 6, 6, 7, 8,
    8, 9, 9, 10, 12, 12, 12, 13, 14, 15, 16, 17, 18, 19, 19, 20, 21, 22, 24, 25],
  M: [0, 1, 1, 1, 2, 2, 4, 4, 4, 5, 5, 5, 8, 9, 9, 10, 10, 11, 13, 14, 16,
    17, 17, 18, 20, 21, 23, 25, 26, 28, 29, 31, 33, 35, 37, 38, 40, 43, 45, 47, 49],
  Q: [0, 1, 1, 2, 2, 4, 4, 6, 6, 8, 8, 8, 10, 12, 16, 12, 17, 16, 18, 21, 20,
    23, 23, 25, 27, 29, 34, 34, 35, 38, 40, 43, 45, 48, 51, 53, 56, 59, 62, 65, 68],
  H: [0, 1, 1, 2, 4, 4, 4, 5, 6, 8, 8, 11, 11, 16, 16, 18, 16, 19, 21, 25, 25,
    25, 34, 30, 32, 35, 37, 40, 42, 45, 48, 51, 54, 57, 60, 63, 66, 70, 74, 77, 81],
};
// The two format bits that name the level (L=01, M=00, Q=11, H=10).
const LEVEL_BITS = { L: 1, M: 0, Q: 3, H: 2 };

// ---- GF(256) arithmetic with the QR polynomial x^8 + x^4 + x^3 + x^2 + 1 ----
const EXP = new Uint8Array(512);
const LOG = new Uint8Array(256);
(() => {
  let value = 1;
  for (let power = 0; power < 255; power++) {
    EXP[power] = value;
    LOG[value] = power;
    value <<= 1;
    if (value & 0x100) value ^= 0x11d;
  }
  for (let power = 255; power < 512; power++) EXP[power] = EXP[power - 255];
})();

function gfMultiply(a, b) {
  return a === 0 || b === 0 ? 0 : EXP[LOG[a] + LOG[b]];
}

// Coefficients (highest degree first, leading 1 dropped) of prod_{i<degree} (x - alpha^i).
function generatorPolynomial(degree) {
  let poly = [1];
  for (let i = 0; i < degree; i++) {
    const next = new Array(poly.length + 1).fill(0);
    for (let j = 0; j < poly.length; j++) {
      next[j] ^= poly[j];
      next[j + 1] ^= gfMultiply(poly[j], EXP[i]);
    }
    poly = next;
  }
  return poly.slice(1);
}

function reedSolomonRemainder(data, degree) {
  const generator = generatorPolynomial(degree);
  const remainder = new Array(degree).fill(0);
  for (const byte of data) {
    const factor = byte ^ remainder.shift();
    remainder.push(0);
    for (let i = 0; i < degree; i++) remainder[i] ^= gfMultiply(generator[i], factor);
  }
  return remainder;
}

// ---- The symbol's fixed parts ----
function alignmentCentres(version) {
  if (version === 1) return [];
  const size = 17 + 4 * version;
  const count = Math.floor(version / 7) + 2;
  // Evenly spaced from the last one back towards 6, with an even step (version 32 is the odd one).
  const step = version === 32 ? 26 : Math.ceil((size - 13) / (2 * count - 2)) * 2;
  const centres = [6];
  for (let i = count - 2; i >= 0; i--) centres.push(size - 7 - i * step);
  return centres;
}

// Remainder of value * x^(generatorDegree) divided by the BCH generator (format and version info).
function bchRemainder(value, generator, generatorDegree) {
  let remainder = value << generatorDegree;
  for (let bit = 31 - Math.clz32(remainder); bit >= generatorDegree; bit--) {
    if ((remainder >>> bit) & 1) remainder ^= generator << (bit - generatorDegree);
  }
  return remainder;
}

class Symbol {
  constructor(version) {
    this.version = version;
    this.size = 17 + 4 * version;
    this.dark = Array.from({ length: this.size }, () => new Uint8Array(this.size));
    this.reserved = Array.from({ length: this.size }, () => new Uint8Array(this.size));
  }

  set(row, column, isDark) {
    this.dark[row][column] = isDark ? 1 : 0;
    this.reserved[row][column] = 1;
  }

  drawFunctionPatterns() {
    const last = this.size - 1;
    for (const [row, column] of [[0, 0], [0, last - 6], [last - 6, 0]]) {
      this.drawFinder(row, column);
    }
    for (let i = 8; i < this.size - 8; i++) {
      this.set(6, i, i % 2 === 0);
      this.set(i, 6, i % 2 === 0);
    }
    const centres = alignmentCentres(this.version);
    const lastCentre = centres[centres.length - 1];
    for (const row of centres) {
      for (const column of centres) {
        // None where a finder sits (top-left, top-right, bottom-left corners).
        if ((row === 6 && column === 6) || (row === 6 && column === lastCentre)) continue;
        if (row === lastCentre && column === 6) continue;
        for (let dr = -2; dr <= 2; dr++) {
          for (let dc = -2; dc <= 2; dc++) {
            this.set(row + dr, column + dc, Math.max(Math.abs(dr), Math.abs(dc)) !== 1);
          }
        }
      }
    }
    this.drawFormat(0, 0); // reserve the areas; the real bits come with the mask
    this.drawVersion();
  }

  // A 7x7 finder at (row, column) with its one-module light separator where it fits.
  drawFinder(row, column) {
    for (let dr = -1; dr <= 7; dr++) {
      for (let dc = -1; dc <= 7; dc++) {
        const r = row + dr;
        const c = column + dc;
        if (r < 0 || c < 0 || r >= this.size || c >= this.size) continue;
        const ring = Math.max(Math.abs(dr - 3), Math.abs(dc - 3));
        this.set(r, c, ring !== 2 && ring !== 4);
      }
    }
  }

  drawFormat(levelBits, mask) {
    const data = (levelBits << 3) | mask;
    const bits = ((data << 10) | bchRemainder(data, 0x537, 10)) ^ 0x5412;
    const bit = (i) => (bits >>> i) & 1;
    const last = this.size - 1;
    // First copy around the top-left finder.
    for (let i = 0; i <= 5; i++) this.set(i, 8, bit(i));
    this.set(7, 8, bit(6));
    this.set(8, 8, bit(7));
    this.set(8, 7, bit(8));
    for (let i = 9; i < 15; i++) this.set(8, 14 - i, bit(i));
    // Second copy split between the other two finders, plus the always-dark module.
    for (let i = 0; i < 8; i++) this.set(8, last - i, bit(i));
    for (let i = 8; i < 15; i++) this.set(last - 14 + i, 8, bit(i));
    this.set(last - 7, 8, 1);
  }

  drawVersion() {
    if (this.version < 7) return;
    const bits = (this.version << 12) | bchRemainder(this.version, 0x1f25, 12);
    for (let i = 0; i < 18; i++) {
      const isDark = (bits >>> i) & 1;
      const a = this.size - 11 + (i % 3);
      const b = Math.floor(i / 3);
      this.set(b, a, isDark);
      this.set(a, b, isDark);
    }
  }

  freeModuleCount() {
    let count = 0;
    for (const row of this.reserved) for (const used of row) count += used ? 0 : 1;
    return count;
  }

  // The codewords, most significant bit first, in the two-column zigzag from the bottom right.
  placeCodewords(codewords) {
    const totalBits = codewords.length * 8;
    let index = 0;
    for (let right = this.size - 1; right >= 1; right -= 2) {
      if (right === 6) right = 5; // the vertical timing pattern takes column 6
      const upward = ((right + 1) & 2) === 0;
      for (let step = 0; step < this.size; step++) {
        const row = upward ? this.size - 1 - step : step;
        for (let column = right; column >= right - 1; column--) {
          if (this.reserved[row][column]) continue;
          if (index < totalBits) {
            this.dark[row][column] = (codewords[index >>> 3] >>> (7 - (index & 7))) & 1;
          }
          index++;
        }
      }
    }
  }
}

const MASKS = [
  (r, c) => (r + c) % 2 === 0,
  (r) => r % 2 === 0,
  (r, c) => c % 3 === 0,
  (r, c) => (r + c) % 3 === 0,
  (r, c) => (Math.floor(r / 2) + Math.floor(c / 3)) % 2 === 0,
  (r, c) => ((r * c) % 2) + ((r * c) % 3) === 0,
  (r, c) => (((r * c) % 2) + ((r * c) % 3)) % 2 === 0,
  (r, c) => (((r + c) % 2) + ((r * c) % 3)) % 2 === 0,
];

function applyMask(symbol, reserved, mask) {
  const test = MASKS[mask];
  for (let r = 0; r < symbol.size; r++) {
    for (let c = 0; c < symbol.size; c++) {
      if (!reserved[r][c] && test(r, c)) symbol.dark[r][c] ^= 1;
    }
  }
}

// ---- Penalty rules (ISO/IEC 18004 7.8.3) ----
function linePenalty(line) {
  let score = 0;
  let runLength = 1;
  for (let i = 1; i <= line.length; i++) {
    if (i < line.length && line[i] === line[i - 1]) {
      runLength++;
    } else {
      if (runLength >= 5) score += 3 + (runLength - 5);
      runLength = 1;
    }
  }
  // A 1:1:3:1:1 finder-like pattern with four light modules before or after it (the quiet
  // zone outside the symbol counts as light): 40 points per pattern.
  const padded = [0, 0, 0, 0, ...line, 0, 0, 0, 0];
  const finder = [1, 0, 1, 1, 1, 0, 1];
  for (let i = 4; i + 11 <= padded.length + 4; i++) {
    if (!finder.every((value, k) => padded[i + k] === value)) continue;
    const lightBefore = [1, 2, 3, 4].every((k) => padded[i - k] === 0);
    const lightAfter = [7, 8, 9, 10].every((k) => padded[i + k] === 0);
    if (lightBefore || lightAfter) score += 40;
  }
  return score;
}

function penalty(symbol) {
  const { size, dark } = symbol;
  let score = 0;
  let darkCount = 0;
  for (let r = 0; r < size; r++) {
    score += linePenalty(dark[r]);
    score += linePenalty(Array.from({ length: size }, (_, i) => dark[i][r]));
  }
  for (let r = 0; r < size; r++) {
    for (let c = 0; c < size; c++) {
      darkCount += dark[r][c];
      if (r + 1 < size && c + 1 < size) {
        const v = dark[r][c];
        if (dark[r][c + 1] === v && dark[r + 1][c] === v && dark[r + 1][c + 1] === v) score += 3;
      }
    }
  }
  const total = size * size;
  const deviation = Math.abs(darkCount * 100 - total * 50) / total; // percent away from 50 %
  score += Math.floor(deviation / 5) * 10;
  return score;
}

// ---- Data encoding ----
function dataCapacityBits(version, level, freeModules) {
  const totalCodewords = Math.floor(freeModules / 8);
  return (totalCodewords - EC_PER_BLOCK[level][version] * BLOCKS[level][version]) * 8;
}

function encodeData(bytes, version, dataCodewords) {
  const bits = [];
  const push = (value, length) => {
    for (let i = length - 1; i >= 0; i--) bits.push((value >>> i) & 1);
  };
  push(0b0100, 4); // byte mode
  push(bytes.length, version <= 9 ? 8 : 16);
  for (const byte of bytes) push(byte, 8);
  const capacity = dataCodewords * 8;
  push(0, Math.min(4, capacity - bits.length)); // terminator
  while (bits.length % 8) bits.push(0);
  const codewords = [];
  for (let i = 0; i < bits.length; i += 8) {
    codewords.push(bits.slice(i, i + 8).reduce((acc, bit) => (acc << 1) | bit, 0));
  }
  for (let pad = 0; codewords.length < dataCodewords; pad ^= 1) {
    codewords.push(pad ? 0x11 : 0xec);
  }
  return codewords;
}

// Split into blocks (the short ones first), add each block's EC codewords, interleave.
function interleave(data, totalCodewords, ecPerBlock, blockCount) {
  const shortBlockLength = Math.floor(totalCodewords / blockCount);
  const longBlocks = totalCodewords % blockCount;
  const dataBlocks = [];
  const ecBlocks = [];
  let offset = 0;
  for (let b = 0; b < blockCount; b++) {
    const dataLength = shortBlockLength - ecPerBlock + (b >= blockCount - longBlocks ? 1 : 0);
    const block = data.slice(offset, offset + dataLength);
    offset += dataLength;
    dataBlocks.push(block);
    ecBlocks.push(reedSolomonRemainder(block, ecPerBlock));
  }
  const result = [];
  const longest = Math.max(...dataBlocks.map((block) => block.length));
  for (let i = 0; i < longest; i++) {
    for (const block of dataBlocks) if (i < block.length) result.push(block[i]);
  }
  for (let i = 0; i < ecPerBlock; i++) for (const block of ecBlocks) result.push(block[i]);
  return result;
}

/**
 * Encode text (UTF-8, byte mode) as a QR Code.
 * Returns {version, level, mask, size, modules} where modules[row][column] is 1 for dark.
 * `options.version` / `options.mask` force a version or a mask (for tests).
 */
export function encodeQr(text, level = "M", options = {}) {
  if (!(level in BLOCKS)) throw new Error(`unknown error-correction level ${level}`);
  const bytes = new TextEncoder().encode(text);
  let symbol = null;
  let dataCodewords = 0;
  const first = options.version || 1;
  const lastVersion = options.version || 40;
  for (let version = first; version <= lastVersion; version++) {
    const candidate = new Symbol(version);
    candidate.drawFunctionPatterns();
    const capacity = dataCapacityBits(version, level, candidate.freeModuleCount());
    if (4 + (version <= 9 ? 8 : 16) + bytes.length * 8 <= capacity) {
      symbol = candidate;
      dataCodewords = capacity / 8;
      break;
    }
  }
  if (symbol === null) throw new Error("the text is too long for a QR code");
  const { version } = symbol;
  const totalCodewords = Math.floor(symbol.freeModuleCount() / 8);
  const data = encodeData(bytes, version, dataCodewords);
  const codewords = interleave(
    data,
    totalCodewords,
    EC_PER_BLOCK[level][version],
    BLOCKS[level][version],
  );
  symbol.placeCodewords(codewords);
  const reserved = symbol.reserved.map((row) => row.slice());
  const unmasked = symbol.dark.map((row) => row.slice());
  const masks = options.mask === undefined ? [0, 1, 2, 3, 4, 5, 6, 7] : [options.mask];
  let best = null;
  for (const mask of masks) {
    symbol.dark = unmasked.map((row) => row.slice());
    applyMask(symbol, reserved, mask);
    symbol.drawFormat(LEVEL_BITS[level], mask);
    const score = penalty(symbol);
    if (best === null || score < best.score) {
      best = { score, mask, modules: symbol.dark.map((row) => Array.from(row)) };
    }
  }
  return { version, level, mask: best.mask, size: symbol.size, modules: best.modules };
}

/** An SVG element drawing the code with a four-module quiet zone, one path of dark squares. */
export function qrSvg(qr, moduleSize = 4) {
  const quiet = 4;
  const extent = qr.size + 2 * quiet;
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${extent} ${extent}`);
  svg.setAttribute("width", String(extent * moduleSize));
  svg.setAttribute("height", String(extent * moduleSize));
  svg.setAttribute("shape-rendering", "crispEdges");
  svg.setAttribute("role", "img");
  const background = document.createElementNS(ns, "rect");
  background.setAttribute("width", String(extent));
  background.setAttribute("height", String(extent));
  background.setAttribute("fill", "#fff");
  svg.appendChild(background);
  let d = "";
  qr.modules.forEach((row, r) => {
    row.forEach((isDark, c) => {
      if (isDark) d += `M${c + quiet} ${r + quiet}h1v1h-1z`;
    });
  });
  const path = document.createElementNS(ns, "path");
  path.setAttribute("d", d);
  path.setAttribute("fill", "#000");
  svg.appendChild(path);
  return svg;
}
