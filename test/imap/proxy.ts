/**
 * A loopback TCP proxy that can cut every connection at a chosen moment (e.g. in the middle of
 * a FETCH response) and refuse new ones, to test dropped connections deterministically.
 */
import { startTcpProxy } from "../servers/tcp-proxy.js";

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
  let marker: string | undefined;
  let remaining = 0;
  let onCut: () => void = () => undefined;
  const tcp = await startTcpProxy(targetPort, () => ({
    down(b) {
      if (marker !== undefined && b.toString("latin1").includes(marker) && --remaining <= 0) {
        marker = undefined;
        tcp.cutAll();
        onCut();
        return undefined;
      }
      return b;
    },
  }));
  const proxy: CuttingProxy = {
    port: tcp.port,
    get refuse() {
      return tcp.refuse;
    },
    set refuse(value) {
      tcp.refuse = value;
    },
    cut: Promise.resolve(),
    cutAfter(m, count) {
      marker = m;
      remaining = count;
      proxy.cut = new Promise((r) => {
        onCut = r;
      });
    },
    close: () => tcp.close(),
  };
  return proxy;
}
