// Reading and rewriting the JSON header of a .tagnet file (layout in
// shared/include/tagnet/nn/model.h): the WebAssembly API saves a model's metadata as the core
// keeps it, and the page adds what only it knows (the label combinations of its examples, how
// the model was fine-tuned) by rewriting the header around the untouched tensor data.
//
//   "TAGNET\0\0" | u32 version | u32 header_crc32 | u64 json_bytes | u64 data_bytes |
//   u32 data_crc32 | u32 reserved | JSON | zero padding to a multiple of 32 | data

const MAGIC = [0x54, 0x41, 0x47, 0x4e, 0x45, 0x54, 0, 0];
const FIXED_HEADER = 40;
const ALIGN = 32;

let crcTable: Uint32Array | null = null;

/** CRC-32 (IEEE 802.3), as the core computes it. */
export function crc32(bytes: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let i = 0; i < 256; ++i) {
      let c = i;
      for (let k = 0; k < 8; ++k) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[i] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; ++i) c = crcTable[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** True when the bytes start like a tagnet model file. */
export function looksLikeModel(bytes: Uint8Array): boolean {
  return bytes.length >= MAGIC.length && MAGIC.every((b, i) => bytes[i] === b);
}

const roundUp = (n: number, a: number) => Math.ceil(n / a) * a;

interface Parsed {
  header: Record<string, unknown>;
  dataStart: number;
  dataBytes: number;
}

function parse(bytes: Uint8Array): Parsed {
  if (!looksLikeModel(bytes) || bytes.length < FIXED_HEADER) throw new Error('not a tagnet model file');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const jsonBytes = Number(view.getBigUint64(16, true));
  const dataBytes = Number(view.getBigUint64(24, true));
  const dataStart = roundUp(FIXED_HEADER + jsonBytes, ALIGN);
  if (dataStart + dataBytes !== bytes.length) throw new Error('truncated tagnet model file');
  const json = new TextDecoder().decode(bytes.subarray(FIXED_HEADER, FIXED_HEADER + jsonBytes));
  return { header: JSON.parse(json), dataStart, dataBytes };
}

/**
 * A copy of the model file whose metadata is `update(old metadata)`. The tensor data and its
 * checksum are kept as they are; the header's length and checksum are recomputed.
 */
export function rewriteMetadata(bytes: Uint8Array,
                                update: (md: Record<string, unknown>) => Record<string, unknown>): Uint8Array {
  const { header, dataStart, dataBytes } = parse(bytes);
  const md = header.metadata && typeof header.metadata === 'object' ? header.metadata : {};
  header.metadata = update({ ...(md as Record<string, unknown>) });
  const json = new TextEncoder().encode(JSON.stringify(header));
  const newStart = roundUp(FIXED_HEADER + json.length, ALIGN);
  const out = new Uint8Array(newStart + dataBytes);
  out.set(bytes.subarray(0, FIXED_HEADER));
  out.set(json, FIXED_HEADER);
  out.set(bytes.subarray(dataStart, dataStart + dataBytes), newStart);
  const view = new DataView(out.buffer);
  view.setUint32(12, crc32(json), true);
  view.setBigUint64(16, BigInt(json.length), true);
  return out;
}
