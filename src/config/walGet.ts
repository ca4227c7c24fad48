// wal-get's prefetching (restore_command): off by default, so that recovery reads the archive one
// file per call as before unless an operator turns it on (docs/wal-archiving.md).
import { z } from 'zod';

export const walGetSchema = z
  .object({
    /**
     * Decode ahead of recovery (pgBackRest's archive-get async): the first wal-get starts a fetcher
     * that decodes the next `prefetch` segments into the spool, and later calls take theirs from it
     * (checked against the sha256 the fetcher recorded) without loading the decryption stack.
     */
    async: z.boolean().default(false),
    /** Holds `<cluster>/`: the prefetched segments, the PostgreSQL user's alone. Default <tmpdir>/pgwarden-get-spool-<uid>. */
    spoolDirectory: z.string().min(1).optional(),
    /** Segments decoded ahead (16 MiB each on disk in the spool). */
    prefetch: z.number().int().min(1).max(64).default(8),
  })
  .strict();
