/**
 * CRC32C (Castagnoli), the checksum TFRecord files carry on every length and payload, and the
 * "masked" form they store: a CRC of data that itself holds CRCs is weak, so TFRecord rotates
 * it and adds a constant before writing it.
 */

/** The Castagnoli polynomial, bit-reversed (CRC32C processes bits least significant first). */
const POLY = 0x82f63b78;

/** One entry per byte value: the CRC contribution of that byte, so each byte costs one lookup. */
const TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC32C of `data` as an unsigned 32-bit integer. */
export function crc32c(data: Uint8Array): number {
  let crc = 0xffffffff;
  for (let i = 0; i < data.length; i++) crc = TABLE[(crc ^ data[i]!) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

const MASK_DELTA = 0xa282ead8;

/** The masked CRC TFRecord stores: rotated right by 15 bits, plus a constant, mod 2^32. */
export function maskCrc(crc: number): number {
  return ((((crc >>> 15) | (crc << 17)) >>> 0) + MASK_DELTA) >>> 0;
}
