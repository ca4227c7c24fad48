// Prebuilds the workflow bundle into dist/ (part of `npm run build`): a production worker loads it
// instead of running webpack at start, which saves seconds and a few hundred MB of peak memory.
// Usage: tsx scripts/bundle-workflows.ts [outDir]   (default: dist)
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { workflowsPath } from '../src/worker/worker.js';

const outDir = resolve(process.argv[2] ?? 'dist');
const { code } = await bundleWorkflowCode({ workflowsPath: workflowsPath() });
await mkdir(outDir, { recursive: true });
await writeFile(join(outDir, 'workflow-bundle.js'), code);
console.log(`workflow bundle: ${join(outDir, 'workflow-bundle.js')} (${(code.length / 1024).toFixed(0)} KiB)`);
