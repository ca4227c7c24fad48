// The rsync driver of the storage interface (storage.ts): a directory on another host, reached with the system's ssh and
// rsync. Each object `<path>/<key>` has a sidecar `<key>.sha256` (hex + newline) recording the sha256
// it was uploaded with. Listing, hashing and removal are one ssh round trip each, whatever the
// number of objects; hashing runs on the remote host, so checking an object never downloads it.
//
// Uploads go in batches (up to BATCH objects): one rsync of a file list into the staging directory
// `<path>/.pgwarden-incoming/` (rsync's own temp files and `--partial-dir` there too, none of it
// shaped like a key), then one ssh session that, object by object in the order given, writes the
// sidecar and renames the complete object into place, never over an object already there. An
// object thus appears only complete and with its sidecar; a batch killed at any point leaves
// staged or partial files that the next run's rsync resumes (`--times`: a complete staged file is
// not sent again), and a sidecar without its object, which nothing reads and the next run rewrites.
// The remote needs a POSIX sh, GNU find (-printf), sha256sum, xargs and rsync.
import type { RsyncRepositoryConfig } from '../config/repositories.js';
import { ErrorType, nonRetryable, retryable } from '../lib/errors.js';
import { connectRsync, shQuote } from './rsyncRemote.js';
import type { Storage, RemoteEntry, TransferProgress } from './storage.js';

const PARTIAL_DIR = '.rsync-partial';
const SIDECAR = '.sha256';
const SIDECAR_TMP = '.sha256.tmp';
/** Uploads land here, under their keys, until they are renamed into place with their sidecar. */
const STAGING = '.pgwarden-incoming';
/** Objects per rsync and ssh session: bounds the file list and the session's input in memory. */
const BATCH = 1000;
/** Staged or partial files untouched this long (their upload abandoned) are removed. */
const STAGING_DAYS = 7;
const PROMOTE_FAILED = 5;
/** Exit codes of our own remote scripts, told apart from the tools' (ssh itself fails with 255). */
const NOT_WRITABLE = 3;
const NO_RSYNC = 4;

export function createRsyncStore(name: string, config: RsyncRepositoryConfig): Storage {
  const { host, root, label, rsyncShell, remote, run, ssh } = connectRsync(name, config);
  // rsync counts in KiB/s.
  const bwlimit = config.maxRate ? [`--bwlimit=${Math.max(1, Math.floor(config.maxRate / 1024))}`] : [];
  const cdRoot = `cd -- ${shQuote(root)} 2>/dev/null || exit 0`; // no repository directory yet: nothing there

  function checkUpload(object: { key: string; sha256: string }): void {
    checkKey(object.key);
    if (!/^[0-9a-f]{64}$/.test(object.sha256))
      throw nonRetryable(ErrorType.InvalidInput, `${label}: bad sha256 "${object.sha256}" for ${object.key}`);
  }

  /**
   * rsync into the staging directory. rsync writes each file as a temp file beside it and renames
   * it when complete and verified (its whole-file checksum); an interrupted file waits in the
   * partial dir to be resumed, and `--times` lets the next run skip files staged complete.
   */
  async function stage(args: string[], what: string, progress?: TransferProgress, input?: string): Promise<void> {
    await run(
      'rsync',
      [
        '-e',
        rsyncShell,
        `--partial-dir=${PARTIAL_DIR}`,
        '--times',
        '--mkpath',
        '--info=progress2',
        ...bwlimit,
        ...args,
      ],
      what,
      { progress, input },
    );
  }

  /**
   * One ssh session: for each staged object, in order, its sidecar then the object renamed into
   * place (so an object never shows without its record); an object already under its key is never
   * replaced, its staged copy dropped. Stops at the first failure: what follows (a manifest after
   * its artifacts) stays staged for the next run.
   */
  async function promote<T extends { key: string; sha256: string }>(
    objects: readonly T[],
    committed: (object: T) => void,
  ): Promise<void> {
    const script =
      `cd -- ${shQuote(root)} || exit ${PROMOTE_FAILED}; S=${STAGING}; ` +
      `while read -r sha k; do ` +
      `if [ -e "$k" ]; then rm -f -- "$S/$k"; echo "E $k"; continue; fi; ` +
      `[ -f "$S/$k" ] || { echo "F $k: not staged"; exit ${PROMOTE_FAILED}; }; ` +
      `d=\${k%/*}; if [ "$d" != "$k" ] && [ ! -d "$d" ]; then mkdir -p -- "$d" || { echo "F $k: cannot create its directory"; exit ${PROMOTE_FAILED}; }; fi; ` +
      `printf '%s\\n' "$sha" > "$k${SIDECAR}" && mv -f -- "$S/$k" "$k" || { echo "F $k: cannot move it into place"; exit ${PROMOTE_FAILED}; }; ` +
      `echo "P $k"; done; ` +
      `find "$S" -type f -ctime +${STAGING_DAYS} -exec rm -f -- {} + 2>/dev/null; exit 0`;
    const { stdout, exitCode } = await ssh(
      script,
      `sha256 records of ${objects.length} object${objects.length === 1 ? '' : 's'}`,
      {
        input: objects.map((o) => `${o.sha256} ${o.key}\n`).join(''),
        okCodes: [PROMOTE_FAILED],
      },
    );
    const lines = stdout.split('\n');
    const placed = new Set(lines.filter((l) => l.startsWith('P ')).map((l) => l.slice(2)));
    for (const o of objects) if (placed.has(o.key)) committed(o);
    if (exitCode === PROMOTE_FAILED) {
      const why = lines.find((l) => l.startsWith('F '))?.slice(2) ?? `cannot enter ${root}`;
      throw retryable(ErrorType.OffsiteUnavailable, `${label}: putting uploaded objects into place failed at ${why}`);
    }
  }

  function checkKey(key: string): string {
    if (!isKey(key))
      throw nonRetryable(
        ErrorType.InvalidInput,
        `${label}: refusing key "${key}" (only letters, digits and _.-/ in segments not starting with ".")`,
      );
    return key;
  }

  return {
    name,
    type: 'rsync',
    features: { batch: true, archiveClasses: false, recordsSha256: true, localPath: false },

    async probe() {
      const q = shQuote(root);
      const r = await ssh(
        `mkdir -p -- ${q} 2>/dev/null && test -d ${q} && test -w ${q} || exit ${NOT_WRITABLE}; command -v rsync >/dev/null || exit ${NO_RSYNC}`,
        'probe',
        { okCodes: [NOT_WRITABLE, NO_RSYNC] },
      );
      if (r.exitCode === NOT_WRITABLE)
        throw nonRetryable(ErrorType.OffsiteMisconfigured, `${label}: ${root} is not a writable directory on ${host}`);
      if (r.exitCode === NO_RSYNC)
        throw nonRetryable(ErrorType.OffsiteMisconfigured, `${label}: rsync is not installed on ${host}`);
    },

    async list(prefix) {
      if (prefix !== '' && !isKey(prefix.replace(/\/$/, '')))
        throw nonRetryable(ErrorType.InvalidInput, `${label}: refusing prefix "${prefix}"`);
      // Walk only the directory part of the prefix; the rest is filtered here, as a key prefix.
      const start = prefix.includes('/') ? prefix.slice(0, prefix.lastIndexOf('/')) : '.';
      // NUL-separated records: `F<size> <path>` for every file, then `S<path> <content>` for every
      // sidecar, read by sh's builtin `read` so that thousands cost no process each. Two walks, one
      // after the other, so the two outputs never interleave.
      const readSidecars = `for f; do h=; read -r h < "$f"; printf 'S%s %s\\0' "$f" "$h"; done`;
      const walk = `find ${shQuote(start)} \\( -name ${PARTIAL_DIR} -o -name ${STAGING} \\) -prune -o -type f`;
      const { stdout } = await ssh(
        `${cdRoot}; test -d ${shQuote(start)} || exit 0; ` +
          `${walk} -printf 'F%s %p\\0' && ${walk} -name '*${SIDECAR}' -exec sh -c ${shQuote(readSidecars)} sh {} +`,
        'list',
      );
      const sizes = new Map<string, number>();
      const sums = new Map<string, string>();
      for (const record of stdout.split('\0')) {
        if (record.startsWith('F')) {
          const space = record.indexOf(' ');
          sizes.set(relative(record.slice(space + 1)), Number(record.slice(1, space)));
        } else if (record.startsWith('S')) {
          const space = record.lastIndexOf(' ');
          sums.set(relative(record.slice(1, space)), record.slice(space + 1));
        }
      }
      const entries = new Map<string, RemoteEntry>();
      for (const [key, bytes] of sizes) {
        // Sidecars are not objects, and anything not shaped like a key (rsync's `.name.XXXXXX`
        // in-flight temp files, foreign files) is not pgwarden's.
        if (!key.startsWith(prefix) || !isKey(key)) continue;
        const sha = sums.get(key + SIDECAR);
        entries.set(key, { key, bytes, recordedSha256: sha && /^[0-9a-f]{64}$/.test(sha) ? sha : undefined });
      }
      return entries;
    },

    async put(key, localFile, meta, progress) {
      const object = { key, ...meta };
      checkUpload(object);
      await stage(['--', localFile, remote(`${STAGING}/${key}`)], `upload of ${key}`, progress);
      await promote([object], () => undefined);
    },

    async putBatch(localRoot, objects, { started, progress, committed, signal }) {
      objects.forEach(checkUpload);
      for (let i = 0; i < objects.length; i += BATCH) {
        if (signal?.aborted) throw new Error(`${label}: upload cancelled`);
        const batch = objects.slice(i, i + BATCH);
        started?.(batch[0]!);
        // --files-from: keys relative to the local root, recreated under the staging directory.
        await stage(
          ['--files-from=-', '--from0', '--', `${localRoot.replace(/\/+$/, '')}/`, remote(`${STAGING}/`)],
          `upload of ${batch.length} objects`,
          progress,
          batch.map((o) => `${o.key}\0`).join(''),
        );
        progress?.(0);
        await promote(batch, committed);
      }
    },

    async contentSha256(keys) {
      if (keys.length === 0) return new Map();
      keys.forEach(checkKey);
      // xargs exits 123 when sha256sum failed for some file (a missing one): those are just absent.
      const { stdout } = await ssh(
        `${cdRoot}; xargs -0 -r sha256sum -- 2>/dev/null; s=$?; [ $s -eq 123 ] && exit 0; exit $s`,
        'remote sha256',
        {
          input: keys.map((k) => `${k}\0`).join(''),
        },
      );
      const sums = new Map<string, string>();
      for (const line of stdout.split('\n')) {
        const m = /^([0-9a-f]{64}) [ *](.+)$/.exec(line);
        if (m) sums.set(m[2]!, m[1]!);
      }
      return sums;
    },

    async get(key, localFile, progress) {
      checkKey(key);
      await run('rsync', ['-e', rsyncShell, '--info=progress2', '--', remote(key), localFile], `download of ${key}`, {
        progress,
      });
    },

    async remove(keys) {
      if (keys.length === 0) return;
      keys.forEach(checkKey);
      await ssh(`${cdRoot}; xargs -0 -r rm -f --`, 'remove', {
        input: keys
          .flatMap((k) => [k, k + SIDECAR, k + SIDECAR_TMP])
          .map((k) => `${k}\0`)
          .join(''),
      });
    },

    async close() {
      // Every call is its own ssh connection: nothing to release.
    },
  };
}

/** A repository key: safe to put in a remote shell command, never a sidecar, never hidden. */
function isKey(key: string): boolean {
  return (
    key.split('/').every((segment) => /^[A-Za-z0-9_-][A-Za-z0-9_.-]*$/.test(segment)) &&
    !key.endsWith(SIDECAR) &&
    !key.endsWith(SIDECAR_TMP)
  );
}

function relative(path: string): string {
  return path.startsWith('./') ? path.slice(2) : path;
}
