// Retention in the config: the local policy (logical and base backups), an offsite repository's
// own tiers, and the WAL's PITR window.
import { z } from 'zod';
import { DEFAULT_BASE_RETENTION, DEFAULT_RETENTION, type RetentionPolicy } from '../lib/retention.js';
import { DEFAULT_WAL_WINDOW, parseWindow } from '../lib/walRetention.js';
import { DEFAULT_OFFSITE_RETENTION } from '../lib/offsiteRetention.js';

/** A grandfather-father-son policy (src/lib/retention.ts) with its own defaults. */
const gfsFields = (d: RetentionPolicy) => ({
  daily: z.number().int().nonnegative().default(d.daily),
  weekly: z.number().int().nonnegative().default(d.weekly),
  monthly: z.number().int().nonnegative().default(d.monthly),
  /** null keeps one backup per year forever (unbounded: only when set explicitly). */
  yearly: z.number().int().nonnegative().nullable().default(d.yearly),
  minimum: z.number().int().min(1).default(d.minimum),
});

/** Logical backups' policy at the top; base backups' own under `base`. */
export const retentionSchema = z
  .object({
    ...gfsFields(DEFAULT_RETENTION),
    base: z.object(gfsFields(DEFAULT_BASE_RETENTION)).strict().prefault({}),
  })
  .strict();

/** An offsite repository's own tiers (lib/offsite.ts DEFAULT_OFFSITE_RETENTION for the fields not given). */
export const offsiteRetentionSchema = z.object(gfsFields(DEFAULT_OFFSITE_RETENTION)).strict();

export const walRetentionSchema = z
  .object({
    /**
     * The PITR window: every moment this far back stays recoverable (continuous WAL from the newest
     * base backup that ended before the window's start); older kept base backups keep only the WAL
     * that makes them consistent. "14 days", "36 hours".
     */
    window: z
      .string()
      .default(DEFAULT_WAL_WINDOW)
      .refine((w) => parseWindow(w) !== undefined, 'a duration like "14 days" or "36 hours"'),
  })
  .strict();
