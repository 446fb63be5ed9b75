/**
 * ZoneFeed: turns a ZoneView's events into the messages DNS workers' replicas follow
 * (protocol.ts): each delta applied to the answering zone, with the version it follows (`from`),
 * and the whole zone when a rebuilt one took over. `full()` is the message a starting worker, or
 * one that saw a gap, gets.
 *
 * @module
 */
import type { ZoneView } from "../zone_view.ts";
import type { Zone } from "../zone.ts";
import type { DeltaMessage, ZoneMessage } from "./protocol.ts";

export class ZoneFeed {
  readonly #view: ZoneView;
  /** The version the last message sent leaves a replica at. */
  #version: number;
  readonly #unlisten: () => void;

  constructor(view: ZoneView, send: (m: ZoneMessage | DeltaMessage) => void) {
    this.#view = view;
    this.#version = view.zone.version;
    this.#unlisten = view.listen((e) => {
      if ("zone" in e) {
        this.#version = e.zone.version;
        send(zoneMessage(e.zone));
        return;
      }
      const from = this.#version;
      this.#version = e.delta.version;
      send({ type: "delta", from, delta: e.delta });
    });
  }

  /** The whole answering zone, as of the last message sent. */
  full(): ZoneMessage {
    return zoneMessage(this.#view.zone);
  }

  close(): void {
    this.#unlisten();
  }
}

/** The whole zone with its TTLs (a reload may have changed them since a worker's init). */
function zoneMessage(zone: Zone): ZoneMessage {
  return {
    type: "zone",
    delta: zone.rows(),
    ttls: { ttl: zone.ttl, serviceTtl: zone.serviceTtls },
  };
}
