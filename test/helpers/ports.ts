import { connect } from 'node:net';

export { freePortOnLoopback as freePort } from '../../src/host/ports.js';

/** Whether something accepts TCP connections on 127.0.0.1:port (a server finished starting). */
export function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
