// A real sshd on 127.0.0.1 for the rsync offsite driver: its own host key, client key and
// known_hosts in a temp dir, run as root without touching the system's /etc/ssh.
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { accepts, freePort } from './ports.js';
import { requireBinary } from './require.js';

export interface SshServer {
  host: string;
  port: number;
  user: string;
  identityFile: string;
  knownHostsFile: string;
  /** An empty directory on the "remote" host: the offsite destination path. */
  remoteRoot: string;
  /** A known_hosts naming another key for the same host:port (a host key mismatch). */
  wrongKnownHostsFile: string;
  stop(): Promise<void>;
}

/** A fresh ed25519 key pair: `file` (private, mode 600) and `file.pub`. */
export async function sshKeygen(file: string): Promise<string> {
  await execa(requireBinary('/usr/bin/ssh-keygen', 'ssh-keygen'), [
    '-q',
    '-t',
    'ed25519',
    '-N',
    '',
    '-C',
    'pgwarden-test',
    '-f',
    file,
  ]);
  return (await readFile(`${file}.pub`, 'utf8')).trim();
}

export async function startSshd(): Promise<SshServer> {
  const sshd = requireBinary('/usr/sbin/sshd', 'OpenSSH server (sshd)');
  requireBinary('/usr/bin/ssh', 'OpenSSH client (ssh)');
  requireBinary('/usr/bin/rsync', 'rsync');
  const dir = await mkdtemp(join(tmpdir(), 'pgwarden-sshd-'));
  const remoteRoot = await mkdtemp(join(tmpdir(), 'pgwarden-offsite-'));
  const port = await freePort();
  const [hostKey, clientKey, otherHostKey] = await Promise.all([
    sshKeygen(join(dir, 'host_ed25519')),
    sshKeygen(join(dir, 'client_ed25519')),
    sshKeygen(join(dir, 'other_host_ed25519')),
  ]);
  const hostEntry = (pub: string) => `[127.0.0.1]:${port} ${pub.split(' ').slice(0, 2).join(' ')}\n`;
  await Promise.all([
    writeFile(join(dir, 'authorized_keys'), `${clientKey}\n`),
    writeFile(join(dir, 'known_hosts'), hostEntry(hostKey)),
    writeFile(join(dir, 'wrong_known_hosts'), hostEntry(otherHostKey)),
    writeFile(
      join(dir, 'sshd_config'),
      [
        `Port ${port}`,
        'ListenAddress 127.0.0.1',
        `HostKey ${join(dir, 'host_ed25519')}`,
        `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'PubkeyAuthentication yes',
        'PermitRootLogin prohibit-password',
        'UsePAM no',
        // The temp dir is world-readable; sshd would otherwise refuse its authorized_keys.
        'StrictModes no',
        `PidFile ${join(dir, 'sshd.pid')}`,
        'PrintMotd no',
        'PrintLastLog no',
        'LogLevel ERROR',
        '',
      ].join('\n'),
    ),
  ]);
  // The privilege-separation directory sshd insists on (normally made by the init script).
  await mkdir('/run/sshd', { recursive: true, mode: 0o755 });

  const proc = execa(sshd, ['-D', '-e', '-f', join(dir, 'sshd_config')], {
    stdin: 'ignore',
    stdout: 'ignore',
    stderr: 'pipe',
    buffer: false,
    reject: false,
    cleanup: true,
  });
  let log = '';
  proc.stderr?.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-4096)));
  let exited = false;
  void proc.then(() => (exited = true));

  const deadline = Date.now() + 15_000;
  while (!(await accepts(port))) {
    if (exited || Date.now() > deadline) {
      proc.kill('SIGKILL');
      await rm(dir, { recursive: true, force: true });
      await rm(remoteRoot, { recursive: true, force: true });
      throw new Error(`sshd did not start on 127.0.0.1:${port}: ${log.trim()}`);
    }
    await sleep(50);
  }

  return {
    host: '127.0.0.1',
    port,
    user: 'root',
    identityFile: join(dir, 'client_ed25519'),
    knownHostsFile: join(dir, 'known_hosts'),
    remoteRoot,
    wrongKnownHostsFile: join(dir, 'wrong_known_hosts'),
    async stop() {
      proc.kill('SIGTERM');
      await proc;
      await Promise.all([rm(dir, { recursive: true, force: true }), rm(remoteRoot, { recursive: true, force: true })]);
    },
  };
}
