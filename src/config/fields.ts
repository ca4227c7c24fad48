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
