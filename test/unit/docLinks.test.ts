// The README is the operator's page and points to docs/ for the rest: every relative link between
// them resolves (the file, and the heading when one is named), every document in docs/ is reachable
// from the README, and the README stays a page (under 300 lines).
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { expect, it } from 'vitest';
import { readDocs } from '../helpers/docs.js';

const ROOT = join(import.meta.dirname, '../..');

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens. */
function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N} _-]/gu, '')
    .replace(/ /g, '-');
}

function anchors(markdown: string): Set<string> {
  const prose = markdown.replace(/```[\s\S]*?```/g, '');
  return new Set([...prose.matchAll(/^#{1,6} (.+)$/gm)].map((m) => slug(m[1]!)));
}

/** Relative links of a document, outside code blocks: [text](target). */
function links(markdown: string): string[] {
  const prose = markdown.replace(/```[\s\S]*?```/g, '');
  return [...prose.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]!).filter((t) => !/^[a-z]+:/.test(t));
}

it('every relative link of the README and docs/ resolves, headings included', async () => {
  const broken: string[] = [];
  for (const doc of await readDocs()) {
    const own = anchors(doc.text);
    for (const target of links(doc.text)) {
      const [file, anchor] = target.split('#') as [string, string | undefined];
      const path = file ? join(ROOT, dirname(doc.path), file) : join(ROOT, doc.path);
      if (!existsSync(path)) broken.push(`${doc.path}: ${target} (no file ${relative(ROOT, path)})`);
      else if (anchor && path.endsWith('.md') && !(file ? anchors(readFileSync(path, 'utf8')) : own).has(anchor))
        broken.push(`${doc.path}: ${target} (no such heading)`);
    }
  }
  expect(broken).toEqual([]);
});

it('the README links to every document in docs/ and stays under 300 lines', async () => {
  const [readme, ...docs] = await readDocs();
  const linked = new Set(links(readme!.text).map((t) => t.split('#')[0]));
  expect(docs.map((d) => d.path).filter((p) => !linked.has(p))).toEqual([]);
  expect(readme!.text.split('\n').length).toBeLessThan(300);
});
