// libpq passfile lookup (https://www.postgresql.org/docs/current/libpq-pgpass.html):
// lines `host:port:database:username:password`, `*` matches anything, `\` escapes `:` and `\`,
// the first matching line wins.

export interface PassfileTarget {
  host: string;
  port: number;
  database: string;
  user: string;
}

function splitFields(line: string): string[] {
  const fields: string[] = [];
  let current = '';
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (ch === '\\' && i + 1 < line.length) {
      current += line[++i];
    } else if (ch === ':' && fields.length < 4) {
      fields.push(current);
      current = '';
    } else {
      current += ch;
    }
  }
  fields.push(current);
  return fields;
}

export function passfileLookup(content: string, target: PassfileTarget): string | undefined {
  const wanted = [target.host, String(target.port), target.database, target.user];
  for (const raw of content.split(/\r?\n/)) {
    if (raw.trim() === '' || raw.startsWith('#')) continue;
    const fields = splitFields(raw);
    if (fields.length !== 5) continue;
    const matches = wanted.every((value, i) => {
      const field = fields[i]!;
      // libpq: "localhost" in the file also matches a Unix-socket connection; we only use TCP.
      return field === '*' || field === value;
    });
    if (matches) return fields[4];
  }
  return undefined;
}
