// A scratch server (a rehearsal's, an in-place PITR's replay before the approval) runs a copy of
// the live cluster's configuration beside it: everything in that copy that could reach the live
// cluster, its archive or its memory is overridden, and its messages are in English.
import { describe, expect, it } from 'vitest';
import { scratchSettings } from '../../src/activities/pitr/settings.js';

describe("a scratch server's settings", () => {
  const s = scratchSettings(54321, '/srv/pg.pgwarden-pitr-1', 15);

  it('never streams from a primary, never runs commands on the archive, shares no pid file', () => {
    expect(s).toMatchObject({
      primary_conninfo: '',
      primary_slot_name: '',
      archive_cleanup_command: '',
      recovery_end_command: '',
      recovery_min_apply_delay: '0',
      external_pid_file: '',
      archive_mode: 'off',
    });
  });

  it('its own port, socket and log, in English; a small server, without requiring huge pages', () => {
    expect(s).toMatchObject({
      port: '54321',
      listen_addresses: '127.0.0.1',
      unix_socket_directories: '/srv/pg.pgwarden-pitr-1',
      logging_collector: 'off',
      log_destination: 'stderr',
      lc_messages: 'C',
      shared_buffers: '128MB',
      huge_pages: 'try',
    });
  });

  it('sets stats_temp_directory only where PostgreSQL has it (before 15)', () => {
    expect(s).not.toHaveProperty('stats_temp_directory');
    expect(scratchSettings(5433, '/w', 14)).toMatchObject({ stats_temp_directory: 'pg_stat_tmp' });
    expect(scratchSettings(5433, '/w')).not.toHaveProperty('stats_temp_directory');
  });
});
