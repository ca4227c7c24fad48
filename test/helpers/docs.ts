// The operator's documents, README.md and docs/*.md, read as one: a test that checks what the docs
// print (commands run as printed, ids that must exist) reads them all, so a block moved from one
// file to another is still checked.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '../..');

export interface Doc {
  /** Relative to the checkout: `README.md`, `docs/runbook.md`. */
  path: string;
  text: string;
}

/** README.md first, then docs/*.md in name order. */
export async function readDocs(): Promise<Doc[]> {
  const names = (await readdir(join(ROOT, 'docs'))).filter((n) => n.endsWith('.md')).sort();
  const paths = ['README.md', ...names.map((n) => `docs/${n}`)];
  return Promise.all(paths.map(async (path) => ({ path, text: await readFile(join(ROOT, path), 'utf8') })));
}

/** Every ```sh block of every document, in the order of readDocs. */
export async function shellBlocks(): Promise<string[]> {
  return (await readDocs()).flatMap((d) => [...d.text.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!));
}
