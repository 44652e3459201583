/**
 * A loopback TCP proxy in front of a test server, for counting connections and bytes, editing
 * or watching the traffic, and cutting or refusing connections on purpose.
 */
import { createServer, type Server, Socket } from "node:net";

/** Per-connection hooks; each sees a chunk and returns what to forward (`undefined`: nothing). */
export interface ProxyTaps {
  /** Client → server. */
  up?(chunk: Buffer): Buffer | undefined;
  /** Server → client. */
  down?(chunk: Buffer): Buffer | undefined;
}

export interface TcpProxy {
  port: number;
  /** Connections accepted so far (refused ones are not counted). */
  accepted: number;
  /** While true, new connections are closed at once. */
  refuse: boolean;
  /** Destroys every open connection. */
  cutAll(): void;
  close(): Promise<void>;
}

/** Starts a proxy to `127.0.0.1:target`; `taps` is called once per accepted connection. */
export async function startTcpProxy(
  target: number,
  taps: () => ProxyTaps = () => ({}),
): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  const proxy: TcpProxy = {
    port: 0,
    accepted: 0,
    refuse: false,
    cutAll() {
      for (const s of sockets) s.destroy();
      sockets.clear();
    },
    close: () =>
      new Promise((resolve) => {
        proxy.cutAll();
        server.close(() => resolve());
      }),
  };
  const server: Server = createServer((client) => {
    if (proxy.refuse) {
      client.destroy();
      return;
    }
    proxy.accepted++;
    const { up, down } = taps();
    const upstream = new Socket();
    sockets.add(client).add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on("error", drop).on("close", drop);
    upstream.on("error", drop).on("close", drop);
    upstream.connect(target, "127.0.0.1");
    client.on("data", (b: Buffer) => {
      const out = up ? up(b) : b;
      if (out !== undefined) upstream.write(out);
    });
    upstream.on("data", (b: Buffer) => {
      const out = down ? down(b) : b;
      if (out !== undefined) client.write(out);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  proxy.port = (server.address() as { port: number }).port;
  return proxy;
}
