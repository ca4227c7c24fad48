// A free TCP port on 127.0.0.1, for a rehearsal's scratch server (the OS picks it).
import { createServer } from 'node:net';

export function freePortOnLoopback(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
