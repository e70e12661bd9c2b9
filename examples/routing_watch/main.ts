// Watching routing changes: watchRouting() reports links, addresses and
// routes as they change in a namespace of this program's own, while the
// program adds a bridge, an address and a route and removes them
// again. The watch ends through an AbortSignal once the link is gone.
//
//   npm run example -- routing_watch      (as root)
import { createNetns, deleteNetns } from "@dp/core";
import { openRouting, type RoutingEvent, watchRouting } from "@dp/routing";

const NS = `dp-ex-watch-${process.pid}`;

/** One line per IPv4 change (IPv6 link-local addresses and routes come and go with the link: left out). */
function describe(e: RoutingEvent): string | undefined {
  const sign = "action" in e ? (e.action === "new" ? "+" : "-") : "";
  switch (e.type) {
    case "link":
      return `${sign} link ${e.link.name} (${e.link.up ? "up" : "down"})`;
    case "address":
      return e.address.family === 4 ? `${sign} address ${e.address.address} (ifindex ${e.address.index})` : undefined;
    case "route": {
      const r = e.route;
      if (r.family !== 4) return undefined;
      return `${sign} route ${r.dst}${r.via === undefined ? "" : ` via ${r.via}`} table ${r.table === 254 ? "main" : r.table === 255 ? "local" : r.table}`;
    }
    case "error":
      return `! ${e.error.message}`;
    default:
      return undefined;
  }
}

using ns = createNetns(NS);
const stop = new AbortController();
try {
  // #region watch
  const events = watchRouting({ netns: ns, kinds: ["link", "address", "route"], signal: stop.signal });
  const printed = (async () => {
    for await (const event of events) {
      const line = describe(event);
      if (line !== undefined) console.log(line);
      if (event.type === "link" && event.action === "delete") stop.abort(); // the last change this program makes
    }
  })();
  // #endregion watch

  // #region changes
  using rt = openRouting({ netns: ns });
  rt.links.add({ kind: "bridge", name: "br0" });
  rt.links.set("br0", { up: true });
  rt.addresses.add("10.203.0.1/24", { dev: "br0" });
  rt.routes.add({ dst: "10.204.0.0/16", via: "10.203.0.254" });
  rt.routes.delete({ dst: "10.204.0.0/16" });
  rt.addresses.delete("10.203.0.1/24", { dev: "br0" });
  rt.links.delete("br0");
  // #endregion changes

  // The first event may be read only after the changes were made: the
  // watch's socket was subscribed when watchRouting() opened it, so none is lost.
  await printed;
  console.log(`watch ended`);
} finally {
  stop.abort(); // a waiting watch keeps the process alive, as a listening socket does
  deleteNetns(NS);
  console.log(`removed ${NS}`);
}
