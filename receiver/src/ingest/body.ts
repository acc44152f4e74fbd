// Reading and decompressing request bodies with the limit applied to wire and decompressed bytes.
import type { IncomingMessage } from 'node:http';
import zlib from 'node:zlib';
import { promisify } from 'node:util';
import { Decompress as ZstdDecompress } from 'fzstd';
import { BadRequest, PayloadTooLarge, UnsupportedMediaType } from '../errors.js';

export type Encoding = 'identity' | 'gzip' | 'deflate' | 'zstd';

const gunzip = promisify(zlib.gunzip);
const inflate = promisify(zlib.inflate);
const inflateRaw = promisify(zlib.inflateRaw);

export function parseContentEncoding(header: string | undefined): Encoding {
  const v = (header ?? '').trim().toLowerCase();
  if (v === '' || v === 'identity') return 'identity';
  if (v === 'gzip' || v === 'x-gzip') return 'gzip';
  if (v === 'deflate') return 'deflate';
  if (v === 'zstd') return 'zstd';
  throw new UnsupportedMediaType(`unsupported Content-Encoding "${header}"; use gzip, zstd, deflate or identity`);
}

/** Read the wire body, refusing (413) as soon as it passes `limit` bytes. */
export async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) {
    throw new PayloadTooLarge(`request body of ${declared} bytes exceeds the limit of ${limit} bytes`);
  }
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (err: Error | null, buf?: Buffer) => {
      if (done) return;
      done = true;
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('aborted', onAborted);
      if (err) reject(err);
      else resolve(buf as Buffer);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        // Stop buffering; the connection is closed after the 413 is written.
        req.pause();
        finish(new PayloadTooLarge(`request body exceeds the limit of ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => finish(null, chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size));
    const onError = (err: Error) => finish(new BadRequest(`error reading request body: ${err.message}`));
    const onAborted = () => finish(new BadRequest('request aborted by client'));
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('aborted', onAborted);
  });
}

function tooLarge(limit: number) {
  return new PayloadTooLarge(`decompressed request body exceeds the limit of ${limit} bytes`);
}

async function zlibDecode(fn: (b: Buffer, o: zlib.ZlibOptions) => Promise<Buffer>, body: Buffer, limit: number, name: string): Promise<Buffer> {
  try {
    // maxOutputLength stops inflation at the limit: a gzip bomb never grows memory past it.
    return await fn(body, { maxOutputLength: limit });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ERR_BUFFER_TOO_LARGE' || err instanceof RangeError) throw tooLarge(limit);
    throw new BadRequest(`body is not valid ${name} data: ${(err as Error).message}`);
  }
}

const ZSTD_MAGIC = 0xfd2fb528;
const ZSTD_MAX_WINDOW = 8 * 1024 * 1024;

/**
 * Walk zstd frame headers before decoding: a frame that declares more content than the limit, or a
 * window larger than 8 MiB (RFC 8878's recommended decoder minimum), is refused without allocating.
 */
function checkZstdFrames(buf: Buffer, limit: number): void {
  let off = 0;
  let declaredTotal = 0;
  while (off < buf.length) {
    if (off + 4 > buf.length) throw new BadRequest('body is not valid zstd data: truncated frame');
    const magic = buf.readUInt32LE(off);
    if ((magic & 0xfffffff0) === 0x184d2a50) {
      if (off + 8 > buf.length) throw new BadRequest('body is not valid zstd data: truncated skippable frame');
      off += 8 + buf.readUInt32LE(off + 4);
      continue;
    }
    if (magic !== ZSTD_MAGIC) throw new BadRequest('body is not valid zstd data: bad magic number');
    const fhd = buf[off + 4];
    if (fhd === undefined) throw new BadRequest('body is not valid zstd data: truncated frame header');
    const fcsFlag = fhd >> 6;
    const single = (fhd >> 5) & 1;
    const checksum = (fhd >> 2) & 1;
    const dictFlag = fhd & 3;
    let p = off + 5;
    let window = 0;
    if (!single) {
      const wd = buf[p++];
      if (wd === undefined) throw new BadRequest('body is not valid zstd data: truncated frame header');
      const base = 2 ** (10 + (wd >> 3));
      window = base + (base / 8) * (wd & 7);
    }
    p += [0, 1, 2, 4][dictFlag] as number;
    const fcsBytes = [single ? 1 : 0, 2, 4, 8][fcsFlag] as number;
    let fcs = -1;
    if (fcsBytes > 0) {
      if (p + fcsBytes > buf.length) throw new BadRequest('body is not valid zstd data: truncated frame header');
      if (fcsBytes === 1) fcs = buf[p] as number;
      else if (fcsBytes === 2) fcs = buf.readUInt16LE(p) + 256;
      else if (fcsBytes === 4) fcs = buf.readUInt32LE(p);
      else fcs = Number(buf.readBigUInt64LE(p));
      p += fcsBytes;
    }
    if (fcs >= 0) {
      declaredTotal += fcs;
      if (declaredTotal > limit) throw tooLarge(limit);
    }
    if (window > ZSTD_MAX_WINDOW && !(fcs >= 0 && fcs <= limit)) throw tooLarge(limit);
    // Skip the blocks of this frame.
    for (;;) {
      if (p + 3 > buf.length) throw new BadRequest('body is not valid zstd data: truncated block');
      const bh = (buf[p] as number) | ((buf[p + 1] as number) << 8) | ((buf[p + 2] as number) << 16);
      const last = bh & 1;
      const type = (bh >> 1) & 3;
      const size = bh >>> 3;
      p += 3 + (type === 1 ? 1 : size);
      if (type === 3) throw new BadRequest('body is not valid zstd data: reserved block type');
      if (last) break;
    }
    off = p + (checksum ? 4 : 0);
  }
}

function zstdDecode(body: Buffer, limit: number): Buffer {
  checkZstdFrames(body, limit);
  const out: Uint8Array[] = [];
  let size = 0;
  const over = new Error('over');
  const d = new ZstdDecompress((chunk) => {
    size += chunk.length;
    if (size > limit) throw over;
    out.push(chunk);
  });
  try {
    d.push(body, true);
  } catch (err) {
    if (err === over) throw tooLarge(limit);
    throw new BadRequest(`body is not valid zstd data: ${(err as Error).message}`);
  }
  return Buffer.concat(out, size);
}

export async function decompress(body: Buffer, encoding: Encoding, limit: number): Promise<Buffer> {
  switch (encoding) {
    case 'identity':
      return body;
    case 'gzip':
      return zlibDecode(gunzip, body, limit, 'gzip');
    case 'deflate':
      // HTTP "deflate" is zlib-wrapped (RFC 1950); some clients send raw deflate (RFC 1951).
      if (body.length >= 2 && ((body[0] as number) & 0x0f) === 8 && (((body[0] as number) << 8) | (body[1] as number)) % 31 === 0) {
        return zlibDecode(inflate, body, limit, 'deflate');
      }
      return zlibDecode(inflateRaw, body, limit, 'deflate');
    case 'zstd':
      return zstdDecode(body, limit);
  }
}
