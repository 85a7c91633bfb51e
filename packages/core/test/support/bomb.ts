import * as Zlib from "node:zlib"

const MiB = 1024 * 1024

/**
 * A gzip stream of `mebibytes` MiB of zeros, about a thousandth of that in size (1 GiB in ~1 MiB), built without
 * compressing the whole: raw deflate blocks of 1 MiB each, independent of one another (a full flush ends each), put end
 * to end, then an empty final block, between gzip's header and its trailer (CRC-32 and length).
 */
export const gzipBomb = (mebibytes: number): Uint8Array => {
  const zeros = new Uint8Array(MiB)
  const block = Zlib.deflateRawSync(zeros, { finishFlush: Zlib.constants.Z_FULL_FLUSH })
  let crc = 0
  for (let i = 0; i < mebibytes; i++) crc = Zlib.crc32(zeros, crc)
  const header = Uint8Array.of(0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff)
  const finalBlock = Zlib.deflateRawSync(new Uint8Array(0))
  const trailer = Buffer.alloc(8)
  trailer.writeUInt32LE(crc >>> 0, 0)
  trailer.writeUInt32LE((mebibytes * MiB) % 2 ** 32, 4)
  return Buffer.concat([header, ...Array.from({ length: mebibytes }, () => block), finalBlock, trailer])
}
