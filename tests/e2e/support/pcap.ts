// Reads what tcpdump wrote (classic pcap, Ethernet, IPv4/TCP) into per-direction TCP byte
// streams, and walks a stream as TLS records (RFC 8446 §5.1: type, version, length), so a
// test can say whether anything but TLS crossed the pod network.

import { readFileSync } from "node:fs";

export interface Flow {
  src: string;
  sport: number;
  dst: string;
  dport: number;
  /** Payload bytes in sequence order (retransmitted bytes kept once). */
  bytes: Uint8Array;
  segments: number;
}

const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_VLAN = 0x8100;
const LINKTYPE_ETHERNET = 1;
const IPPROTO_TCP = 6;

/** One entry per direction of each TCP connection seen, with its payload concatenated. */
export function readTcpFlows(path: string): Flow[] {
  const buf = readFileSync(path);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (buf.length < 24) throw new Error(`${path} is not a pcap file (only ${buf.length} bytes)`);
  const magic = view.getUint32(0, true);
  const little = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  if (!little && view.getUint32(0, false) !== 0xa1b2c3d4 && view.getUint32(0, false) !== 0xa1b23c4d) {
    throw new Error(`${path} is not a classic pcap file (magic ${magic.toString(16)}); write it with tcpdump -w`);
  }
  const linktype = view.getUint32(20, little) & 0x0fffffff;
  if (linktype !== LINKTYPE_ETHERNET) throw new Error(`${path}: link type ${linktype} is not Ethernet`);

  const chunks = new Map<string, { flow: Omit<Flow, "bytes">; parts: Uint8Array[]; next: number | undefined }>();
  let off = 24;
  while (off + 16 <= buf.length) {
    const incl = view.getUint32(off + 8, little);
    const start = off + 16;
    off = start + incl;
    if (off > buf.length) break; // a record cut short by an interrupted capture
    let p = start + 12;
    let ethertype = view.getUint16(p);
    if (ethertype === ETHERTYPE_VLAN) {
      p += 4;
      ethertype = view.getUint16(p);
    }
    p += 2;
    if (ethertype !== ETHERTYPE_IPV4 || p + 20 > off) continue;
    const ihl = (buf[p]! & 0x0f) * 4;
    const total = view.getUint16(p + 2);
    if (buf[p + 9] !== IPPROTO_TCP) continue;
    const src = [...buf.subarray(p + 12, p + 16)].join(".");
    const dst = [...buf.subarray(p + 16, p + 20)].join(".");
    const t = p + ihl;
    if (t + 20 > off) continue;
    const sport = view.getUint16(t);
    const dport = view.getUint16(t + 2);
    const seq = view.getUint32(t + 4);
    const dataOffset = (buf[t + 12]! >> 4) * 4;
    // Segmentation offload can hand tcpdump a packet whose IP length field is 0.
    const ipEnd = total === 0 ? off : Math.min(off, p + total);
    let payload = buf.subarray(t + dataOffset, ipEnd);
    const key = `${src}:${sport}>${dst}:${dport}`;
    let entry = chunks.get(key);
    if (!entry) {
      entry = { flow: { src, sport, dst, dport, segments: 0 }, parts: [], next: undefined };
      chunks.set(key, entry);
    }
    if (payload.length === 0) continue;
    // Sequence numbers wrap at 2^32: the signed 32-bit difference says before or after.
    const behind = entry.next === undefined ? 0 : (entry.next - seq) | 0;
    if (behind >= payload.length) continue; // a retransmission of bytes already kept
    if (behind > 0) payload = payload.subarray(behind);
    entry.next = (seq + behind + payload.length) >>> 0;
    entry.parts.push(payload);
    entry.flow.segments++;
  }
  return [...chunks.values()].map(({ flow, parts }) => ({ ...flow, bytes: Buffer.concat(parts) }));
}

export interface TlsWalk {
  /** Record content types in order: 20 change_cipher_spec, 21 alert, 22 handshake, 23 application_data. */
  types: number[];
  /** False when a byte sequence that is not a TLS record header was met. */
  allTls: boolean;
}

/** Walks a TCP byte stream as back-to-back TLS records; a trailing partial record is allowed. */
export function walkTlsRecords(bytes: Uint8Array): TlsWalk {
  const types: number[] = [];
  let i = 0;
  while (i + 5 <= bytes.length) {
    const type = bytes[i]!;
    const major = bytes[i + 1]!;
    const length = (bytes[i + 3]! << 8) | bytes[i + 4]!;
    if (type < 20 || type > 23 || major !== 3 || length > 18_432) return { types, allTls: false };
    types.push(type);
    i += 5 + length;
  }
  return { types, allTls: true };
}

/** Whether `needle` (ASCII) occurs anywhere in the stream. */
export function contains(bytes: Uint8Array, needle: string): boolean {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).includes(needle, 0, "latin1");
}
