#!/usr/bin/env node
// The `pgwarden` command. `wal-push` (the archive_command, started once per WAL segment) and a
// `wal-get` (restore_command) that finds its segment prefetched take paths that load Node built-ins
// only; every other command, and any call the fast paths do not take, loads the full program.
import { fastWalPush } from '../archive/fastPath.js';
import { fastWalGet } from '../archive/getFast.js';

const args = process.argv.slice(2);
if (!(await fastWalPush(args)) && !(await fastWalGet(args))) await import('./program.js');
