/**
 * A loopback TCP proxy that can cut every connection at a chosen moment (e.g. in the middle of
 * a FETCH response) and refuse new ones, to test dropped connections deterministically.
 */
import { createServer, type Server, Socket } from "node:net";

export interface CuttingProxy {
  port: number;
  /** Cuts all connections once `count` more server→client chunks contain `marker`. */
  cutAfter(marker: string, count: number): void;
  /** While true, new connections are closed at once. */
  refuse: boolean;
  /** Resolves once the armed cut happened. */
  cut: Promise<void>;
  close(): Promise<void>;
}

export async function startProxy(targetPort: number): Promise<CuttingProxy> {
  const sockets = new Set<Socket>();
  let marker: string | undefined;
  let remaining = 0;
  let onCut: () => void = () => undefined;
  const proxy: CuttingProxy = {
    port: 0,
    refuse: false,
    cut: Promise.resolve(),
    cutAfter(m, count) {
      marker = m;
      remaining = count;
      proxy.cut = new Promise((r) => {
        onCut = r;
      });
    },
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  const server: Server = createServer((client) => {
    if (proxy.refuse) {
      client.destroy();
      return;
    }
    const upstream = new Socket();
    sockets.add(client);
    sockets.add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on("error", drop).on("close", drop);
    upstream.on("error", drop).on("close", drop);
    upstream.connect(targetPort, "127.0.0.1");
    client.on("data", (b) => upstream.write(b));
    upstream.on("data", (b) => {
      if (marker !== undefined && b.toString("latin1").includes(marker) && --remaining <= 0) {
        marker = undefined;
        for (const s of sockets) s.destroy();
        sockets.clear();
        onCut();
        return;
      }
      client.write(b);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  proxy.port = (server.address() as { port: number }).port;
  return proxy;
}
