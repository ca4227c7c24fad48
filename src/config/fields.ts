// Field types several sections of the config share: names, environment variable names, URLs.
import { z } from 'zod';

/** A URL with no user or password in it: pgwarden names endpoints in messages, which reach workflow history. */
export const urlWithoutCredentials = (instead: string) =>
  z.url().refine((u) => {
    const url = new URL(u);
    return !url.username && !url.password;
  }, `must not carry credentials; use ${instead}`);

export const name = z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9_.@+-]{0,62}$/, 'letters, digits, _ . @ + - (max 63)');

export const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/);

/** A server's connection fields, shared by a cluster and its standbys. */
export const portField = z.number().int().min(1).max(65535);
export const userField = z.string().min(1);
/** Name of the environment variable that holds the password. */
export const passwordEnvField = envName;
/** A libpq passfile (host:port:db:user:password, mode 0600). */
export const passfileField = z.string();
