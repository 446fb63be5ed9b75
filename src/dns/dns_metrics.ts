/**
 * DNS query counters (README "Metrics"): queries answered by response code and question type,
 * and queries dropped without an answer (unparseable, or a response sent to us). Both label
 * sets are fixed lists, so the number of series is bounded (RCODES × QTYPES). Counting is one
 * table lookup and one increment in a Float64Array, on the UDP fast path of the DNS workers as
 * on the main thread's server (the Answerer counts every message it is given).
 *
 * The counts travel between threads as plain number arrays in this module's layout
 * (`index(rcode, qtype)`, DROPPED last), summed by `addCounts`.
 *
 * @module
 */
import { family, sample } from "../lib/prom_text.ts";
import { RCODE } from "./wire.ts";

/** Response code labels; `other` for any other code. */
export const RCODES: readonly string[] = [
  "NOERROR",
  "FORMERR",
  "SERVFAIL",
  "NXDOMAIN",
  "NOTIMP",
  "REFUSED",
  "BADVERS",
  "other",
];
/** Question type labels; `none` when the query had no usable question, `other` for the rest. */
export const QTYPES: readonly string[] = [
  "A",
  "NS",
  "CNAME",
  "SOA",
  "PTR",
  "MX",
  "TXT",
  "AAAA",
  "SRV",
  "ANY",
  "other",
  "none",
];
const QTYPE_CODES = [1, 2, 5, 6, 12, 15, 16, 28, 33, 255];
const QTYPE_OTHER = QTYPES.indexOf("other");
export const QTYPE_NONE = QTYPES.indexOf("none");
export const RCODE_BADVERS = RCODES.indexOf("BADVERS");
const RCODE_OTHER = RCODES.indexOf("other");
/** Slot of the dropped queries (after the rcode × qtype table). */
export const DROPPED = RCODES.length * QTYPES.length;
/** Length of a counts array. */
export const COUNTS_LENGTH = DROPPED + 1;

/** Question type (0..255 here) → label index. */
const QTYPE_INDEX = new Uint8Array(256).fill(QTYPE_OTHER);
QTYPE_CODES.forEach((code, i) => QTYPE_INDEX[code] = i);
/** Header rcode (4 bits) → label index (BADVERS needs the OPT record: see Answerer). */
const RCODE_INDEX = new Uint8Array(16).fill(RCODE_OTHER);
for (const [name, code] of Object.entries(RCODE)) {
  const i = RCODES.indexOf(name);
  if (i >= 0 && code < 16) RCODE_INDEX[code] = i;
}

/** The label index of question type `type`. */
export function qtypeIndex(type: number): number {
  return type < 256 ? QTYPE_INDEX[type]! : QTYPE_OTHER;
}

/** The label index of a response's header rcode (its 4th byte, low 4 bits). */
export function rcodeIndexOf(response: Uint8Array): number {
  return RCODE_INDEX[response[3]! & 0x0f]!;
}

/** Counters of one answerer. */
export class DnsCounts {
  readonly counts = new Float64Array(COUNTS_LENGTH);

  /** One query answered with rcode label `rcode` to a question of label `qtype`. */
  answered(rcode: number, qtype: number): void {
    this.counts[rcode * QTYPES.length + qtype]!++;
  }

  dropped(): void {
    this.counts[DROPPED]!++;
  }

  /** The counts as plain data. */
  snapshot(): number[] {
    return Array.from(this.counts);
  }
}

/** Adds `from` into `into` (both in this module's layout). */
export function addCounts(into: number[], from: ArrayLike<number>): number[] {
  for (let i = 0; i < COUNTS_LENGTH; i++) into[i] = (into[i] ?? 0) + (from[i] ?? 0);
  return into;
}

/** An all-zero counts array. */
export function zeroCounts(): number[] {
  return new Array(COUNTS_LENGTH).fill(0);
}

/** The Prometheus text of the counts (queries: the label sets counted so far). */
export function renderDnsMetrics(counts: ArrayLike<number>): string {
  const lines: string[] = [];
  for (let r = 0; r < RCODES.length; r++) {
    for (let t = 0; t < QTYPES.length; t++) {
      const n = counts[r * QTYPES.length + t] ?? 0;
      if (n > 0) {
        lines.push(
          sample("berth_dns_queries_total", [["rcode", RCODES[r]!], ["qtype", QTYPES[t]!]], n),
        );
      }
    }
  }
  return family(
    "berth_dns_queries_total",
    "counter",
    "DNS queries answered, by response code and question type.",
    lines,
  ) + family(
    "berth_dns_dropped_total",
    "counter",
    "DNS messages dropped without an answer (unparseable, or not a query).",
    [sample("berth_dns_dropped_total", [], counts[DROPPED] ?? 0)],
  );
}
