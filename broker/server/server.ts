// The broker's gRPC server: TLS with the ferry CA. The server *requests* a client certificate
// but does not require one at the TLS layer, so that an agent without a certificate can call
// Enroll; every other method requires and checks the certificate itself (service.ts).
//
// Why not `ServerCredentials.createSsl(ca, pairs, false)`: with `false` grpc-js sets
// `requestCert: false`, so the client never sends its certificate and no method could see it;
// with `true` Node rejects clients without one (no Enroll). The certificate-provider credentials
// give `requestCert: true, rejectUnauthorized: false`; a client whose certificate does not chain
// to the CA then simply appears unauthenticated.
import { experimental, Server, type ServerCredentials } from "@grpc/grpc-js";

/** Hands fixed PEM material to grpc-js (asynchronously, as grpc-js expects of a provider). */
class StaticCertificateProvider implements experimental.CertificateProvider {
  constructor(
    private readonly ca: Buffer,
    private readonly identity: { certificate: Buffer; privateKey: Buffer },
  ) {}
  addCaCertificateListener(listener: experimental.CaCertificateUpdateListener): void {
    process.nextTick(listener, { caCertificate: this.ca });
  }
  removeCaCertificateListener(): void {}
  addIdentityCertificateListener(listener: experimental.IdentityCertificateUpdateListener): void {
    process.nextTick(listener, this.identity);
  }
  removeIdentityCertificateListener(): void {}
}

export function brokerServerCredentials(opts: { caPem: string; certPem: string; keyPem: string }): ServerCredentials {
  const provider = new StaticCertificateProvider(Buffer.from(opts.caPem), { certificate: Buffer.from(opts.certPem), privateKey: Buffer.from(opts.keyPem) });
  // The same provider serves both roles (grpc-js's parameter names for this function are swapped).
  return experimental.createCertificateProviderServerCredentials(provider, provider, false);
}

export interface GrpcServer {
  server: Server;
  /** Bound port (useful with listen port 0). */
  port: number;
  /** Stop accepting calls, let running ones finish for up to `graceMs`, then cut them. */
  stop(graceMs?: number): Promise<void>;
}

export async function startGrpcServer(opts: { listen: string; caPem: string; certPem: string; keyPem: string }, register: (server: Server) => void): Promise<GrpcServer> {
  const server = new Server({ "grpc.max_receive_message_length": 16 * 1024 * 1024 });
  register(server);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(opts.listen, brokerServerCredentials(opts), (err, p) => (err ? reject(new Error(`cannot listen for gRPC on ${opts.listen}: ${err.message}`)) : resolve(p))),
  );
  return {
    server,
    port,
    stop: (graceMs = 5000) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      }),
  };
}
