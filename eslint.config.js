// pgwarden's lint: typescript-eslint's recommended rules (syntax only, no type information, so
// `npm run lint` stays quick), import cycles, and the import rules that say what each folder of src/
// may touch (docs/architecture.md). Formatting is prettier's job, not ESLint's.
import js from '@eslint/js';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';
import { importX } from 'eslint-plugin-import-x';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

/**
 * Only the module specifiers matched by `allowed` may be imported (with values); anything else is an error.
 * One negative-lookahead regex, because no-restricted-imports lists what is forbidden, not what is allowed.
 */
const only = (allowed, message, allowTypeImports) => ({
  regex: `^(?!(?:${allowed.join('|')}))`,
  caseSensitive: true,
  allowTypeImports,
  message,
});

// Relative specifiers, as written from a file directly in the folder concerned (src/<folder>/x.ts).
// `./` but not `./../` (which would leave the folder).
const SAME_FOLDER = String.raw`\./(?!\.)`;
const LIB = String.raw`\.\./lib/`;
const HOST = String.raw`\.\./host/`;
const NODE = 'node:';

export const workflowImports = only(
  ['@temporalio/workflow$', '@temporalio/common$', SAME_FOLDER, LIB],
  'Workflow code is replayed and bundled: it imports only @temporalio/workflow, src/workflows and src/lib ' +
    '(anything else as `import type`).',
  true,
);

export const archiveImports = only(
  [NODE, SAME_FOLDER, LIB, HOST],
  'PostgreSQL starts archive_command for every WAL file: src/archive and src/host load only node: built-ins, ' +
    'src/lib and src/host.',
  false,
);

// What src/lib uses today besides node:crypto and node:path; it stays pure, so no file, process or socket access.
export const libImports = only(
  ['node:(?!(?:fs|child_process|net)(?:/|$))', 'zod$', '@temporalio/common(?:/|$)', SAME_FOLDER],
  'src/lib is pure logic shared with workflows and wal-push: no file, process or network access, no other npm ' +
    'package, and only types from the rest of src/.',
  true,
);

// The drivers below the activities never reach up: not into the procedures, the CLI or the worker, and
// each only into the drivers beneath it (docs/architecture.md).
const forbid = (folders, message) => ({
  regex: String.raw`^(?:\.\./|\./\.\./)(?:${folders.join('|')})/`,
  caseSensitive: true,
  allowTypeImports: false,
  message,
});
const UPPER = ['activities', 'cli', 'worker', 'workflows'];
export const driverImports = {
  storage: forbid(UPPER, 'src/storage is a driver: it does not import activities, workflows, the CLI or the worker.'),
  postgres: forbid([...UPPER, 'storage'], 'src/postgres imports only src/stream, src/host, src/config and src/lib.'),
  stream: forbid([...UPPER, 'storage', 'postgres'], 'src/stream imports only src/host, src/config and src/lib.'),
  config: forbid([...UPPER, 'storage', 'postgres', 'stream', 'host'], 'src/config imports only src/lib.'),
};

export default defineConfig(
  {
    ignores: ['node_modules/', 'dist/', '.tools/', '.bench/', 'coverage/', 'test/**/histories/'],
  },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    rules: {
      // Real findings stay errors. What follows is off or relaxed on purpose, and says why.
      // `_`-prefixed names are how this code marks a parameter it must accept and does not use.
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true },
      ],
      // Terminal escapes, tabs and newlines are matched on purpose (CLI output, header values).
      'no-control-regex': 'off',
    },
  },
  {
    files: ['src/**/*.ts'],
    plugins: { 'import-x': importX },
    settings: {
      // The plugin's TypeScript settings (parse .ts files it follows), resolving `./x.js` to x.ts as tsc does.
      'import-x/extensions': importX.flatConfigs.typescript.settings['import-x/extensions'],
      'import-x/parsers': importX.flatConfigs.typescript.settings['import-x/parsers'],
      'import-x/resolver-next': [createTypeScriptImportResolver({ project: './tsconfig.json' })],
    },
    rules: {
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
    },
  },
  {
    files: ['src/workflows/**/*.ts'],
    rules: { '@typescript-eslint/no-restricted-imports': ['error', { patterns: [workflowImports] }] },
  },
  {
    files: ['src/archive/**/*.ts', 'src/host/**/*.ts'],
    rules: { '@typescript-eslint/no-restricted-imports': ['error', { patterns: [archiveImports] }] },
  },
  ...Object.entries(driverImports).map(([folder, pattern]) => ({
    files: [`src/${folder}/**/*.ts`],
    rules: { '@typescript-eslint/no-restricted-imports': ['error', { patterns: [pattern] }] },
  })),
  {
    // docs/architecture.md: a file that grows past this is split by concern.
    files: ['src/**/*.ts'],
    rules: { 'max-lines': ['error', { max: 300 }] },
  },
  {
    files: ['src/lib/**/*.ts'],
    rules: { '@typescript-eslint/no-restricted-imports': ['error', { patterns: [libImports] }] },
  },
);
