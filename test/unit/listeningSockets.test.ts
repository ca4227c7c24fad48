import { describe, expect, it } from 'vitest';
import { listeningSocketInodes, socketInode } from '../../src/lib/listeningSockets.js';

const TCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1C41 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1514976 1 0000000000000000 100 0 0 10 0
   1: 00000000:2031 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1215 1 0000000000000000 100 0 0 10 0
   2: 0100007F:1C41 0100007F:B0A2 01 00000000:00000000 00:00000000 00000000     0        0 99999 1 0000000000000000 20 4 30 10 -1
   3: 0100007F:D2F0 0100007F:1C41 01 00000000:00000000 00:00000000 00000000     0        0 88888 1 0000000000000000 20 4 30 10 -1
`;
const TCP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:1C41 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0
`;

describe('listeningSocketInodes', () => {
  it('finds the listener on a port (7233 = 0x1C41), not its connections nor other ports', () => {
    expect(listeningSocketInodes(TCP, 7233)).toEqual(['1514976']);
    expect(listeningSocketInodes(TCP, 8241)).toEqual(['1215']);
    expect(listeningSocketInodes(TCP, 53996)).toEqual([]); // a client's end, not listening
    expect(listeningSocketInodes(TCP, 8233)).toEqual([]);
  });
  it('reads the IPv6 table', () => {
    expect(listeningSocketInodes(TCP6, 7233)).toEqual(['4242']);
  });
  it('reads no header or empty text as nothing', () => {
    expect(listeningSocketInodes('', 7233)).toEqual([]);
  });
});

describe('socketInode', () => {
  it('reads socket fd links only', () => {
    expect(socketInode('socket:[1514976]')).toBe('1514976');
    expect(socketInode('/dev/null')).toBeUndefined();
    expect(socketInode('pipe:[123]')).toBeUndefined();
  });
});
