#!/usr/bin/env node
// The `pgwarden` command. `wal-push` (the archive_command, started once per WAL segment) takes a
// path that loads Node built-ins only; every other command, and any wal-push the fast path does
// not take, loads the full program.
import { fastWalPush } from '../archive/fastPath.js';

if (!(await fastWalPush(process.argv.slice(2)))) await import('./program.js');
