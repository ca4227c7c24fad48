// Which process listens on a TCP port, from Linux's /proc/net/tcp{,6} tables: the dev stack checks
// that the server answering on its port is the one it started, not another one already there.

const LISTEN = '0A';

/** The socket inodes listening on `port` (any local address) in the text of /proc/net/tcp or tcp6. */
export function listeningSocketInodes(procNetTcp: string, port: number): string[] {
  const inodes: string[] = [];
  for (const line of procNetTcp.split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 10 || fields[3] !== LISTEN) continue;
    const local = fields[1]!;
    const hexPort = local.slice(local.lastIndexOf(':') + 1);
    if (parseInt(hexPort, 16) === port && fields[9] !== '0') inodes.push(fields[9]!);
  }
  return inodes;
}

/** The inode of a `socket:[123]` file descriptor link, or undefined for anything else. */
export function socketInode(fdLink: string): string | undefined {
  return /^socket:\[(\d+)\]$/.exec(fdLink)?.[1];
}
